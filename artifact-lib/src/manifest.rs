//! The on-disk formats that travel with an experiment: `artifact_manifest.json` inside the
//! archive and `<name>_metadata.json` beside it. Both read the Python tools' versions too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Problem, Result};
use crate::hash;

/// File name of the manifest, at the top of every experiment and archive.
pub const MANIFEST_NAME: &str = "artifact_manifest.json";

/// The manifest and sidecar format this version writes. The Python tools' format has no
/// `format_version` field and reads as version 0.
pub const FORMAT_VERSION: u32 = 2;

/// The only hash algorithm in use.
pub const HASH_ALGORITHM: &str = "sha256";

/// What an archive holds, written as its last member (`<name>/artifact_manifest.json`).
///
/// It lists exactly the regular files of the archive (never itself), sorted by `/`-separated
/// path, and every folder, so empty folders survive the round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// 0 for the Python tools' manifests, [`FORMAT_VERSION`] for ours.
    #[serde(default)]
    pub format_version: u32,
    /// Always `sha256`.
    #[serde(default = "default_algorithm")]
    pub hash_algorithm: String,
    /// The experiment's folder name.
    pub experiment_name: String,
    /// RFC 3339 UTC for ours; naive local time in the Python tools' manifests.
    pub created_at: String,
    /// One entry per file, sorted by path.
    pub files: Vec<FileEntry>,
    /// Every folder below the experiment, sorted.
    #[serde(default)]
    pub directories: Vec<String>,
    /// Files left out by `--no-models` (path and size only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<ExcludedFile>,
    /// Sum of `files[].size_bytes`.
    pub total_size_bytes: u64,
    /// `files.len()`.
    pub num_files: u64,
    /// `path -> sha256`, the same data as `files`, kept for the Python tools' readers.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    /// [`hash::content_digest`] of `files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
}

fn default_algorithm() -> String {
    HASH_ALGORITHM.to_string()
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// `/`-separated, relative to the experiment.
    pub path: String,
    /// Length in bytes.
    pub size_bytes: u64,
    /// Lower-case hex SHA-256.
    pub checksum: String,
    /// Modification time, RFC 3339 UTC (ours) or naive (Python's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
}

/// A file `package --no-models` left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedFile {
    /// `/`-separated, relative to the experiment.
    pub path: String,
    /// Length in bytes.
    pub size_bytes: u64,
}

impl Manifest {
    /// Builds a manifest of ours from files (any order) and folders.
    pub fn new(
        experiment_name: &str,
        created_at: String,
        mut files: Vec<FileEntry>,
        mut directories: Vec<String>,
        mut excluded: Vec<ExcludedFile>,
    ) -> Manifest {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        directories.sort();
        excluded.sort_by(|a, b| a.path.cmp(&b.path));
        let checksums = files
            .iter()
            .map(|f| (f.path.clone(), f.checksum.clone()))
            .collect();
        let content_digest = hash::content_digest(
            files
                .iter()
                .map(|f| (f.path.as_str(), f.size_bytes, f.checksum.as_str())),
        );
        Manifest {
            format_version: FORMAT_VERSION,
            hash_algorithm: HASH_ALGORITHM.to_string(),
            experiment_name: experiment_name.to_string(),
            created_at,
            total_size_bytes: files.iter().map(|f| f.size_bytes).sum(),
            num_files: files.len() as u64,
            files,
            directories,
            excluded,
            checksums,
            content_digest: Some(content_digest),
        }
    }

    /// Parses a manifest from `bytes`, read from `origin` (named in errors).
    ///
    /// Python manifests (version 0) are normalised: `\` separators become `/`, and a file whose
    /// `checksum` is missing takes it from `checksums`.
    pub fn parse(bytes: &[u8], origin: &Path) -> Result<Manifest> {
        let mut manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|err| Error::bad_file(origin, format!("not a valid manifest: {err}")))?;
        if manifest.format_version > FORMAT_VERSION {
            return Err(Error::bad_file(
                origin,
                format!(
                    "manifest format {} is newer than this tool understands ({FORMAT_VERSION}); update the tool",
                    manifest.format_version
                ),
            ));
        }
        if manifest.hash_algorithm != HASH_ALGORITHM {
            return Err(Error::bad_file(
                origin,
                format!("unsupported hash algorithm `{}`", manifest.hash_algorithm),
            ));
        }
        if manifest.is_legacy() {
            let fix = |p: &str| p.replace('\\', "/");
            manifest.checksums = manifest
                .checksums
                .iter()
                .map(|(path, sum)| (fix(path), sum.to_ascii_lowercase()))
                .collect();
            for file in &mut manifest.files {
                file.path = fix(&file.path);
                if file.checksum.is_empty() {
                    if let Some(sum) = manifest.checksums.get(&file.path) {
                        file.checksum = sum.clone();
                    }
                }
                file.checksum = file.checksum.to_ascii_lowercase();
            }
            manifest.directories = manifest.directories.iter().map(|d| fix(d)).collect();
        }
        let mut seen = BTreeSet::new();
        for file in &manifest.files {
            if !hash::is_sha256_hex(&file.checksum) {
                return Err(Error::bad_file(
                    origin,
                    format!("`{}` has no valid SHA-256 checksum", file.path),
                ));
            }
            if !seen.insert(file.path.as_str()) {
                return Err(Error::bad_file(
                    origin,
                    format!("`{}` is listed twice", file.path),
                ));
            }
        }
        Ok(manifest)
    }

    /// Whether this manifest was written by the Python tools.
    pub fn is_legacy(&self) -> bool {
        self.format_version == 0
    }

    /// Pretty JSON with a trailing newline: the exact bytes written to disk.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        bytes.push(b'\n');
        bytes
    }

    /// The content digest, computed from `files` when the manifest does not record one.
    pub fn content_digest(&self) -> String {
        self.content_digest.clone().unwrap_or_else(|| {
            hash::content_digest(
                self.files
                    .iter()
                    .map(|f| (f.path.as_str(), f.size_bytes, f.checksum.as_str())),
            )
        })
    }

    /// Compares the files actually present (`path -> (size, sha256)`) with this manifest and
    /// returns every disagreement, sorted by path.
    ///
    /// For Python manifests, a missing file that their `--no-models` would have dropped is not a
    /// problem: it is returned in the second list so the caller can say so.
    pub fn compare(&self, found: &BTreeMap<String, (u64, String)>) -> (Vec<Problem>, Vec<String>) {
        let mut problems = Vec::new();
        let mut left_out = Vec::new();
        for entry in &self.files {
            match found.get(&entry.path) {
                None if self.is_legacy()
                    && crate::filter::ModelFilter::python_no_models_rule(&entry.path) =>
                {
                    left_out.push(entry.path.clone())
                }
                None => problems.push(Problem::Missing {
                    path: entry.path.clone(),
                }),
                Some((size, _)) if *size != entry.size_bytes => {
                    problems.push(Problem::SizeMismatch {
                        path: entry.path.clone(),
                        expected: entry.size_bytes,
                        actual: *size,
                    })
                }
                Some((_, sha)) if *sha != entry.checksum => {
                    problems.push(Problem::ChecksumMismatch {
                        path: entry.path.clone(),
                        expected: entry.checksum.clone(),
                        actual: sha.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        let listed: BTreeSet<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        for path in found.keys() {
            if !listed.contains(path.as_str()) {
                problems.push(Problem::Unlisted { path: path.clone() });
            }
        }
        problems.sort_by(|a, b| problem_path(a).cmp(problem_path(b)));
        (problems, left_out)
    }
}

fn problem_path(problem: &Problem) -> &str {
    match problem {
        Problem::ChecksumMismatch { path, .. }
        | Problem::SizeMismatch { path, .. }
        | Problem::Missing { path }
        | Problem::Unlisted { path } => path,
        Problem::NoManifest => "",
    }
}

/// `<name>_metadata.json`, written beside each archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// 0 for the Python tools' sidecars.
    #[serde(default)]
    pub format_version: u32,
    /// The experiment's folder name.
    pub experiment_name: String,
    /// The archive's file name (ours); the Python tools wrote the path they were given.
    pub package_path: String,
    /// RFC 3339 UTC (ours).
    pub created_at: String,
    /// Archive size in MiB (bytes / 1024 / 1024), two decimals.
    pub total_size_mb: f64,
    /// Files in the archive, the manifest not counted.
    pub num_files: u64,
    /// SHA-256 of the `.tar.gz` file.
    pub checksum: String,
    /// False when `--no-models` left weights out.
    pub includes_models: bool,
    /// Exact archive size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_size_bytes: Option<u64>,
    /// Sum of the sizes of the archived files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_size_bytes: Option<u64>,
    /// The manifest's content digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
}

impl Sidecar {
    /// Reads and parses the sidecar at `path`.
    pub fn read(path: &Path) -> Result<Sidecar> {
        let bytes = std::fs::read(path).map_err(|err| Error::io("reading", path, err))?;
        let sidecar: Sidecar = serde_json::from_slice(&bytes)
            .map_err(|err| Error::bad_file(path, format!("not a valid sidecar: {err}")))?;
        if !hash::is_sha256_hex(&sidecar.checksum) {
            return Err(Error::bad_file(
                path,
                "`checksum` is not a SHA-256 hex digest",
            ));
        }
        Ok(sidecar)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("sidecar serialises");
        bytes.push(b'\n');
        bytes
    }
}

/// The sidecar path for an archive: `x.tar.gz` -> `x_metadata.json`.
pub fn sidecar_path(archive: &Path) -> std::path::PathBuf {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".tgz"))
        .unwrap_or(&name);
    archive.with_file_name(format!("{stem}_metadata.json"))
}

/// RFC 3339 UTC with whole seconds, e.g. `2025-10-04T11:17:10Z`.
pub fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// RFC 3339 UTC of a Unix timestamp.
pub fn rfc3339_unix(seconds: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// MiB with two decimals, as the Python tools report sizes.
pub fn mib(bytes: u64) -> f64 {
    (bytes as f64 / 1024.0 / 1024.0 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON_MANIFEST: &str = r#"{
  "experiment_name": "exp",
  "created_at": "2025-10-04T11:17:10.123456",
  "files": [
    {"path": "logs\\train.log", "size_bytes": 3, "checksum": "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", "modified": "2025-10-04T11:17:10"}
  ],
  "directories": ["logs"],
  "total_size_bytes": 3,
  "checksums": {"logs\\train.log": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
  "num_files": 1
}"#;

    #[test]
    fn python_manifests_are_normalised() {
        let manifest = Manifest::parse(PYTHON_MANIFEST.as_bytes(), Path::new("m.json")).unwrap();
        assert!(manifest.is_legacy());
        assert_eq!(manifest.files[0].path, "logs/train.log");
        assert_eq!(
            manifest.files[0].checksum,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(manifest.checksums.contains_key("logs/train.log"));
    }

    #[test]
    fn newer_formats_are_refused() {
        let text = r#"{"format_version": 99, "experiment_name": "e", "created_at": "", "files": [], "total_size_bytes": 0, "num_files": 0}"#;
        let err = Manifest::parse(text.as_bytes(), Path::new("m.json")).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn compare_finds_every_kind_of_problem() {
        let sha = |c: char| c.to_string().repeat(64);
        let entry = |path: &str, size, c| FileEntry {
            path: path.into(),
            size_bytes: size,
            checksum: sha(c),
            modified: None,
        };
        let manifest = Manifest::new(
            "e",
            String::new(),
            vec![entry("a", 1, 'a'), entry("b", 2, 'b'), entry("c", 3, 'c')],
            vec![],
            vec![],
        );
        let found = BTreeMap::from([
            ("a".to_string(), (1, sha('f'))),
            ("b".to_string(), (5, sha('b'))),
            ("d".to_string(), (1, sha('d'))),
        ]);
        let (problems, _) = manifest.compare(&found);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert!(shown[0].starts_with("checksum mismatch: a"));
        assert!(shown[1].starts_with("size mismatch: b"));
        assert!(shown[2].starts_with("missing: c"));
        assert!(shown[3].starts_with("unlisted: d"));
    }

    #[test]
    fn sidecar_names_follow_the_archive() {
        assert_eq!(
            sidecar_path(Path::new("a/exp.tar.gz")),
            Path::new("a/exp_metadata.json")
        );
    }
}
