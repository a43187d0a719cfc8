//! The one error type of the library: each variant names the thing that failed and, where
//! there is one, what the user can do about it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a user (or their disk) can get wrong.
///
/// `Display` is always a single line that names the file, experiment or part at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a named path.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `package NAME` or `verify NAME` named nothing that exists.
    #[error("experiment `{name}` not found: no directory {} (run `cargo xtask list` to see what exists)", path.display())]
    ExperimentNotFound { name: String, path: PathBuf },
    /// A JSON file (manifest, sidecar, index, parts list, configuration) could not be understood.
    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
    /// The archive's SHA-256 differs from the one its sidecar records.
    #[error("archive checksum mismatch: {} has SHA-256 {actual} but {} records {expected}; re-download or re-copy the archive", archive.display(), sidecar.display())]
    ArchiveChecksumMismatch {
        archive: PathBuf,
        sidecar: PathBuf,
        expected: String,
        actual: String,
    },
    /// The archive is malformed, hostile, or not what it claims to be.
    #[error("{}: {problem}", archive.display())]
    BadArchive { archive: PathBuf, problem: String },
    /// Import would replace an experiment that is already there.
    #[error("experiment `{name}` already exists at {}; pass --force to replace it", path.display())]
    AlreadyExists { name: String, path: PathBuf },
    /// Contents disagree with their manifest; every problem is listed.
    #[error("{}: {} problem(s) found, first: {}", subject.display(), problems.len(), problems.first().map(ToString::to_string).unwrap_or_default())]
    Verification {
        subject: PathBuf,
        problems: Vec<Problem>,
    },
    /// A source file changed while it was being packaged.
    #[error("{}: {what} while it was being packaged; wait for the writer to finish and package again", path.display())]
    ChangedDuringPackaging { path: PathBuf, what: String },
    /// The experiment holds something that cannot be packaged (a link leaving it, a FIFO, ...).
    #[error("{}: {reason}", path.display())]
    Unpackable { path: PathBuf, reason: String },
    /// Several experiments of a batch failed; each is named.
    #[error("{} of {total} experiment(s) failed: {}", failures.len(), failures.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(", "))]
    Batch {
        total: usize,
        failures: Vec<(String, Error)>,
    },
    /// A user-supplied argument or setting is wrong.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::BadArchive`].
    pub fn archive(archive: &Path, problem: impl Into<String>) -> Error {
        Error::BadArchive {
            archive: archive.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// Shorthand for [`Error::BadFile`].
    pub fn bad_file(path: &Path, reason: impl fmt::Display) -> Error {
        Error::BadFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// Adds the failing path to an [`io::Error`].
pub trait IoContext<T> {
    /// Turns an I/O error into [`Error::Io`] naming `path`.
    fn at(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::io(action, path, source))
    }
}

/// One disagreement between files and their manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Content differs from the recorded SHA-256.
    ChecksumMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    /// Size differs from the recorded size.
    SizeMismatch {
        path: String,
        expected: u64,
        actual: u64,
    },
    /// Listed in the manifest, absent from the contents.
    Missing { path: String },
    /// Present in the contents, absent from the manifest.
    Unlisted { path: String },
    /// No manifest at all, so nothing could be checked.
    NoManifest,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ChecksumMismatch {
                path,
                expected,
                actual,
            } => write!(
                f,
                "checksum mismatch: {path}: expected {expected}, actual {actual}"
            ),
            Problem::SizeMismatch {
                path,
                expected,
                actual,
            } => write!(
                f,
                "size mismatch: {path}: expected {expected} bytes, actual {actual}"
            ),
            Problem::Missing { path } => {
                write!(f, "missing: {path} is in the manifest but not present")
            }
            Problem::Unlisted { path } => {
                write!(f, "unlisted: {path} is present but not in the manifest")
            }
            Problem::NoManifest => {
                write!(f, "no artifact_manifest.json: nothing to verify against")
            }
        }
    }
}
