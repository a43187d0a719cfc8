//! Portable relative paths: `/`-separated strings, and the checks that keep archive member
//! names inside the experiment on every operating system.

use std::path::{Component, Path};

/// `path` as a `/`-separated string (lossy for non-UTF-8 names, which callers reject first).
pub fn to_slash(path: &Path) -> String {
    let mut out = String::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => {
                if !out.is_empty() && !out.ends_with('/') {
                    out.push('/');
                }
                out.push_str(&part.to_string_lossy());
            }
            Component::RootDir => out.push('/'),
            Component::Prefix(prefix) => out.push_str(&prefix.as_os_str().to_string_lossy()),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.is_empty() && !out.ends_with('/') {
                    out.push('/');
                }
                out.push_str("..");
            }
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Checks one component of an archive member name; returns why it is unsafe.
///
/// Refused everywhere, because some supported platform would misread it: empty, `.`, `..`,
/// backslashes, colons (drive letters, alternate data streams), NUL and other control characters.
pub fn check_component(component: &str) -> Result<(), &'static str> {
    match component {
        "" => Err("has an empty path component"),
        "." | ".." => Err("has a `.` or `..` path component"),
        _ if component.contains('\\') => Err("contains a backslash"),
        _ if component.contains(':') => Err("contains a colon (drive letter or stream name)"),
        _ if component.chars().any(|c| c.is_control()) => Err("contains a control character"),
        _ => Ok(()),
    }
}

/// Splits an archive member name into its top-level folder and the path below it, refusing
/// anything that could land outside the experiment.
///
/// A single trailing `/` (directory entries) is allowed. Returns `(top, rest)` where `rest` is
/// empty for the top folder itself.
pub fn split_member_name(name: &str) -> Result<(&str, &str), String> {
    if name.starts_with('/') {
        return Err("is an absolute path".to_string());
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("has an empty name".to_string());
    }
    for component in trimmed.split('/') {
        check_component(component).map_err(str::to_string)?;
    }
    Ok(match trimmed.split_once('/') {
        Some((top, rest)) => (top, rest),
        None => (trimmed, ""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_split_into_top_and_rest() {
        assert_eq!(split_member_name("exp/a/b.txt"), Ok(("exp", "a/b.txt")));
        assert_eq!(split_member_name("exp/"), Ok(("exp", "")));
        assert_eq!(split_member_name("exp/logs/"), Ok(("exp", "logs")));
    }

    #[test]
    fn hostile_member_names_are_refused() {
        for name in [
            "/etc/passwd",
            "exp/../other/x",
            "exp/./x",
            "exp//x",
            "exp/a\\b",
            "C:/x",
            "exp/C:x",
            "exp/a\u{0}b",
            "..",
            "",
        ] {
            assert!(split_member_name(name).is_err(), "{name:?} must be refused");
        }
    }

    #[test]
    fn to_slash_joins_with_forward_slashes() {
        assert_eq!(to_slash(Path::new("a/b/c")), "a/b/c");
        assert_eq!(to_slash(Path::new("")), ".");
    }
}
