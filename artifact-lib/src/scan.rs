//! Walking an experiment directory: which files and folders it holds, in a stable order, with
//! links and special files handled on purpose.
//!
//! Symbolic links to files *inside* the experiment are followed (the file's content is stored
//! under the link's name); links to folders or to anything outside the experiment, FIFOs,
//! sockets and devices are refused, naming the entry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, IoContext, Result};
use crate::filter::ModelFilter;
use crate::manifest::{ExcludedFile, MANIFEST_NAME};
use crate::paths;

/// A regular file found in an experiment.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// `/`-separated, relative to the experiment.
    pub relative: String,
    /// Where to read it (the link target for a followed link).
    pub path: PathBuf,
    /// Size when walked.
    pub size: u64,
    /// Modification time when walked.
    pub modified: SystemTime,
    /// Whether any execute bit is set (kept as 0o755 in archives).
    pub executable: bool,
}

/// Everything below an experiment directory.
#[derive(Debug, Clone)]
pub struct ExperimentScan {
    /// The experiment's folder name.
    pub name: String,
    /// The folder itself.
    pub root: PathBuf,
    /// Regular files, sorted by relative path; never the top-level manifest.
    pub files: Vec<SourceFile>,
    /// Every folder, sorted.
    pub directories: Vec<String>,
    /// Files left out by the model filter.
    pub excluded: Vec<ExcludedFile>,
}

impl ExperimentScan {
    /// Total bytes of `files`.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Walks `root`. With `leave_out` set, files it matches go to `excluded` instead of `files`.
pub fn scan_experiment(root: &Path, leave_out: Option<&ModelFilter>) -> Result<ExperimentScan> {
    let meta = std::fs::metadata(root).at("reading", root)?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not an experiment directory",
            root.display()
        )));
    }
    let name = experiment_name(root)?;
    let canonical_root = root.canonicalize().at("resolving", root)?;
    let mut scan = ExperimentScan {
        name,
        root: root.to_path_buf(),
        files: Vec::new(),
        directories: Vec::new(),
        excluded: Vec::new(),
    };
    // Names that differ only by case collide on Windows and macOS, where the archive may land.
    let mut folded: HashMap<String, String> = HashMap::new();
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walker {
        let entry = entry.map_err(|err| {
            let path = err.path().unwrap_or(root).to_path_buf();
            Error::io("walking", path, err.into())
        })?;
        let path = entry.path();
        let relative = relative_name(root, path)?;
        if relative == MANIFEST_NAME {
            // The manifest of an earlier import: describes the old archive, not this one.
            continue;
        }
        if let Some(other) = folded.insert(relative.to_lowercase(), relative.clone()) {
            return Err(Error::Unpackable {
                path: path.to_path_buf(),
                reason: format!("differs from `{other}` only by case, so the two would collide on Windows and macOS; rename one"),
            });
        }
        let file_type = entry.file_type();
        if file_type.is_dir() {
            if leave_out.is_some_and(|f| f.is_model_file(&format!("{relative}/"))) {
                continue;
            }
            scan.directories.push(relative);
            continue;
        }
        let (read_from, meta) = if file_type.is_symlink() {
            follow_link(path, &canonical_root)?
        } else {
            (
                path.to_path_buf(),
                entry
                    .metadata()
                    .map_err(|e| Error::io("reading", path, e.into()))?,
            )
        };
        if !meta.is_file() {
            return Err(Error::Unpackable {
                path: path.to_path_buf(),
                reason: format!(
                    "is a {}, not a regular file; remove it from the experiment",
                    kind_of(&meta)
                ),
            });
        }
        if leave_out.is_some_and(|f| f.is_model_file(&relative)) {
            scan.excluded.push(ExcludedFile {
                path: relative,
                size_bytes: meta.len(),
            });
            continue;
        }
        scan.files.push(SourceFile {
            relative,
            path: read_from,
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            executable: is_executable(&meta),
        });
    }
    // Walk order sorts each folder's children by OS file name; manifests sort by full path.
    scan.files.sort_by(|a, b| a.relative.cmp(&b.relative));
    scan.directories.sort();
    Ok(scan)
}

/// The folder name of an experiment, which must be valid UTF-8 and a safe archive component.
pub fn experiment_name(root: &Path) -> Result<String> {
    let absolute = std::path::absolute(root).at("resolving", root)?;
    let name = absolute
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Unpackable {
            path: root.to_path_buf(),
            reason: "the experiment folder name is not valid UTF-8; rename it".to_string(),
        })?;
    paths::check_component(name).map_err(|why| Error::Unpackable {
        path: root.to_path_buf(),
        reason: format!("the experiment folder name {why}; rename it"),
    })?;
    Ok(name.to_string())
}

fn relative_name(root: &Path, path: &Path) -> Result<String> {
    let relative = path
        .strip_prefix(root)
        .expect("walkdir yields paths below its root");
    let mut parts = Vec::new();
    for component in relative.components() {
        let part = component
            .as_os_str()
            .to_str()
            .ok_or_else(|| Error::Unpackable {
                path: path.to_path_buf(),
                reason: "name is not valid UTF-8; rename it".to_string(),
            })?;
        paths::check_component(part).map_err(|why| Error::Unpackable {
            path: path.to_path_buf(),
            reason: format!("name {why}, which cannot travel to every platform; rename it"),
        })?;
        parts.push(part);
    }
    Ok(parts.join("/"))
}

fn follow_link(link: &Path, canonical_root: &Path) -> Result<(PathBuf, std::fs::Metadata)> {
    let target = link.canonicalize().map_err(|err| Error::Unpackable {
        path: link.to_path_buf(),
        reason: format!("symbolic link cannot be resolved ({err}); fix or remove it"),
    })?;
    if !target.starts_with(canonical_root) {
        return Err(Error::Unpackable {
            path: link.to_path_buf(),
            reason: format!(
                "symbolic link points outside the experiment (to {}); copy the file in instead",
                target.display()
            ),
        });
    }
    let meta = std::fs::metadata(&target).at("reading", &target)?;
    if meta.is_dir() {
        return Err(Error::Unpackable {
            path: link.to_path_buf(),
            reason: "symbolic link to a folder; replace it with the folder itself".to_string(),
        });
    }
    Ok((target, meta))
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    if meta.is_dir() {
        "folder"
    } else {
        "special file"
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}
