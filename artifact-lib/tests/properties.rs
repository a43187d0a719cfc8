//! Property tests: package -> import round trips over random trees are byte-exact, and any
//! single-byte corruption of an archive is detected.

use std::collections::BTreeMap;
use std::path::Path;

use artifact_lib::{import_experiment, package_experiment, ImportOptions, PackageOptions};
use proptest::prelude::*;

/// A file or folder below the experiment: path components and, for files, the content.
#[derive(Debug, Clone)]
enum Node {
    File(Vec<String>, Vec<u8>),
    Folder(Vec<String>),
}

fn component() -> impl Strategy<Value = String> {
    // Unicode, spaces, dots and dashes; no separators, colons or control characters.
    "[a-zA-Z0-9 _.\\-éüß日本語ñ]{1,12}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(component(), 1..7)
}

fn node() -> impl Strategy<Value = Node> {
    prop_oneof![
        3 => (path(), prop::collection::vec(any::<u8>(), 0..3000)).prop_map(|(p, c)| Node::File(p, c)),
        1 => path().prop_map(|p| Node::File(p, Vec::new())),
        1 => path().prop_map(Node::Folder),
    ]
}

/// Writes the nodes that fit together (no file where a folder goes, no case-insensitive clash);
/// returns what the tree holds: path -> Some(content) for files, None for folders.
fn build(root: &Path, nodes: &[Node]) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut tree: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let mut folded: BTreeMap<String, String> = BTreeMap::new();
    'nodes: for node in nodes {
        let (parts, content) = match node {
            Node::File(p, c) => (p, Some(c.clone())),
            Node::Folder(p) => (p, None),
        };
        // Every prefix must be (or become) a folder; the leaf must be new.
        for depth in 1..=parts.len() {
            let prefix = parts[..depth].join("/");
            let leaf = depth == parts.len();
            match (tree.get(&prefix), folded.get(&prefix.to_lowercase())) {
                (Some(None), _) if !leaf => {}
                (None, Some(_)) => continue 'nodes,
                (None, None) => {}
                _ => continue 'nodes,
            }
        }
        for depth in 1..parts.len() {
            let prefix = parts[..depth].join("/");
            folded.insert(prefix.to_lowercase(), prefix.clone());
            tree.insert(prefix, None);
        }
        let path = parts.join("/");
        folded.insert(path.to_lowercase(), path.clone());
        tree.insert(path, content);
    }
    for (path, content) in &tree {
        let full = root.join(path);
        match content {
            None => std::fs::create_dir_all(&full).unwrap(),
            Some(bytes) => {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, bytes).unwrap();
            }
        }
    }
    tree
}

fn read_tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut tree = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let relative = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let content = entry
            .file_type()
            .is_file()
            .then(|| std::fs::read(entry.path()).unwrap());
        tree.insert(relative, content);
    }
    tree
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trips_are_byte_exact(nodes in prop::collection::vec(node(), 0..25)) {
        let dir = tempfile::tempdir().unwrap();
        let experiment = dir.path().join("src").join("random exp ü");
        std::fs::create_dir_all(&experiment).unwrap();
        let expected = build(&experiment, &nodes);
        let packaged = package_experiment(&experiment, &PackageOptions::new(dir.path().join("out"))).unwrap();
        let imported = import_experiment(&packaged.archive_path, &ImportOptions::new(dir.path().join("dst"))).unwrap();
        let mut got = read_tree(&imported.experiment_dir);
        prop_assert!(got.remove("artifact_manifest.json").is_some());
        prop_assert_eq!(got, expected);
    }
}

/// One packaged experiment shared by the corruption cases.
fn packaged_archive() -> &'static (tempfile::TempDir, Vec<u8>, Vec<u8>) {
    static ARCHIVE: std::sync::OnceLock<(tempfile::TempDir, Vec<u8>, Vec<u8>)> =
        std::sync::OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let experiment = dir.path().join("exp");
        std::fs::create_dir_all(experiment.join("logs")).unwrap();
        std::fs::write(experiment.join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
        std::fs::write(
            experiment.join("logs/train.log"),
            "step 1 loss 2.5\n".repeat(300),
        )
        .unwrap();
        let weights: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i.wrapping_mul(2_654_435_761)).to_le_bytes())
            .collect();
        std::fs::write(experiment.join("model.safetensors"), weights).unwrap();
        let report =
            package_experiment(&experiment, &PackageOptions::new(dir.path().join("out"))).unwrap();
        let archive = std::fs::read(&report.archive_path).unwrap();
        let sidecar = std::fs::read(&report.sidecar_path).unwrap();
        (dir, archive, sidecar)
    })
}

fn import_corrupted(offset: usize, flip: u8, with_sidecar: bool) -> Result<(), String> {
    let (_, archive, sidecar) = packaged_archive();
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = archive.clone();
    let offset = offset % bytes.len();
    bytes[offset] ^= flip;
    std::fs::write(dir.path().join("exp.tar.gz"), &bytes).unwrap();
    if with_sidecar {
        std::fs::write(dir.path().join("exp_metadata.json"), sidecar).unwrap();
    }
    let target = dir.path().join("target");
    let result = import_experiment(&dir.path().join("exp.tar.gz"), &ImportOptions::new(&target));
    let left = std::fs::read_dir(&target).map(|d| d.count()).unwrap_or(0);
    match result {
        Ok(_) => Err(format!(
            "corruption at {offset} (xor {flip:#x}) went unnoticed"
        )),
        Err(_) if left != 0 => Err(format!("a failed import left {left} entries in the target")),
        Err(_) => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_corruption_is_detected_with_the_sidecar(offset in any::<usize>(), flip in 1u8..=255) {
        prop_assert_eq!(import_corrupted(offset, flip, true), Ok(()));
    }

    /// Without a sidecar only the gzip header's time, flags and OS bytes are unprotected: gzip's
    /// CRC, the tar checksums and the manifest cover everything from byte 10 on.
    #[test]
    fn corruption_past_the_gzip_header_is_detected_without_the_sidecar(offset in 10usize.., flip in 1u8..=255) {
        let (_, archive, _) = packaged_archive();
        let offset = 10 + offset % (archive.len() - 10);
        prop_assert_eq!(import_corrupted(offset, flip, false), Ok(()));
    }
}
