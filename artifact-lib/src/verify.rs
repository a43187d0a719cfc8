//! `verify`: an archive (streamed, nothing written) or an experiment folder (hashed on every
//! core) against its manifest, listing every problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::archive::{DiscardSink, Limits};
use crate::error::{IoContext, Problem, Result};
use crate::import;
use crate::manifest::{Manifest, MANIFEST_NAME};
use crate::package;
use crate::progress::Progress;
use crate::scan;
use crate::source::ArchiveSource;

/// The outcome of a verification that could run to its end.
#[derive(Debug)]
pub struct VerifyReport {
    /// What was verified.
    pub subject: PathBuf,
    /// Files checked and their total size.
    pub num_files: u64,
    /// Total bytes hashed.
    pub total_bytes: u64,
    /// Every disagreement with the manifest; empty when valid.
    pub problems: Vec<Problem>,
    /// Tolerated oddities (legacy formats, ...).
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// Whether everything matched.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies `path`: an experiment folder when it is a folder, otherwise an archive or any part of
/// a split archive (read under `limits`, the decompression-bomb guards).
///
/// Returns `Err` only when verification could not run (unreadable, or a damaged or hostile
/// archive); disagreements with the manifest are listed in the report.
///
/// ```
/// # fn main() -> artifact_lib::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("config.json"), "{}").unwrap();
/// let manifest = artifact_lib::create_manifest(dir.path())?;
/// std::fs::write(dir.path().join("artifact_manifest.json"), manifest.to_json()).unwrap();
/// assert!(artifact_lib::verify(dir.path(), Default::default(), &artifact_lib::NoProgress)?.is_valid());
///
/// std::fs::write(dir.path().join("config.json"), "{\"changed\": 1}").unwrap();
/// assert!(!artifact_lib::verify(dir.path(), Default::default(), &artifact_lib::NoProgress)?.is_valid());
/// # Ok(()) }
/// ```
pub fn verify(path: &Path, limits: Limits, progress: &dyn Progress) -> Result<VerifyReport> {
    if path.is_dir() {
        verify_directory(path, progress)
    } else {
        verify_archive(path, limits, progress)
    }
}

/// Verifies an archive as a stream: sidecar checksum (when a sidecar is beside it), structure,
/// and every file against the manifest.
pub fn verify_archive(
    path: &Path,
    limits: Limits,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let source = ArchiveSource::open(path)?;
    let expected = source.expected_checksum()?;
    let contents = import::read_checked(
        &source,
        expected.as_ref(),
        &mut DiscardSink,
        limits,
        progress,
    )?;
    let (problems, warnings) = match import::validate(&source, &contents) {
        Ok(warnings) if contents.manifest.is_none() => (vec![Problem::NoManifest], warnings),
        Ok(warnings) => (Vec::new(), warnings),
        Err(crate::Error::Verification { problems, .. }) => (problems, Vec::new()),
        Err(other) => return Err(other),
    };
    Ok(VerifyReport {
        subject: source.display_path().to_path_buf(),
        num_files: contents.files.len() as u64,
        total_bytes: contents.files.values().map(|(size, _)| size).sum(),
        problems,
        warnings,
    })
}

/// Verifies an experiment folder against its `artifact_manifest.json`.
pub fn verify_directory(path: &Path, progress: &dyn Progress) -> Result<VerifyReport> {
    let manifest_path = path.join(MANIFEST_NAME);
    let experiment = scan::scan_experiment(path, None)?;
    let mut report = VerifyReport {
        subject: path.to_path_buf(),
        num_files: experiment.files.len() as u64,
        total_bytes: experiment.total_bytes(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if !manifest_path.is_file() {
        report.problems.push(Problem::NoManifest);
        return Ok(report);
    }
    let bytes = std::fs::read(&manifest_path).at("reading", &manifest_path)?;
    let manifest = Manifest::parse(&bytes, &manifest_path)?;
    let entries = package::hash_files(&experiment.name, &experiment.files, progress)?;
    let found: BTreeMap<String, (u64, String)> = entries
        .into_iter()
        .map(|e| (e.path, (e.size_bytes, e.checksum)))
        .collect();
    let (problems, left_out) = manifest.compare(&found);
    report.problems = problems;
    if !left_out.is_empty() {
        report.warnings.push(format!(
            "{} model file(s) in the manifest were left out by the Python tools' --no-models",
            left_out.len()
        ));
    }
    Ok(report)
}
