//! House rules, checked on every `cargo test`: every Rust module starts with a `//!` doc, the
//! library prints nothing (the binary decides what users see), and no debug output is left in.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = ["artifact-lib", "xtask", "tests"]
        .iter()
        .map(|d| workspace_root().join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 10, "found only {files:?}");
    files
}

#[test]
fn every_module_has_a_doc_comment() {
    let missing: Vec<_> = rust_files()
        .into_iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a leading //! doc: {missing:?}"
    );
}

#[test]
fn no_debug_output_and_a_silent_library() {
    let mut offenders = Vec::new();
    for path in rust_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let in_library = path.starts_with(workspace_root().join("artifact-lib/src"));
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let debug = code.contains(concat!("dbg", "!("));
            let prints = ["println!(", "eprintln!(", "print!(", "eprint!("]
                .iter()
                .any(|m| code.contains(m));
            if debug || (in_library && prints) {
                offenders.push(format!("{}:{}: {}", path.display(), number + 1, code));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}
