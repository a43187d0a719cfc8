//! `import`: archive -> staging folder on the target's filesystem -> checks -> one rename.
//! A failed import leaves the target exactly as it was.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::archive::{self, ArchiveContents, Limits, Sink};
use crate::error::{Error, IoContext, Problem, Result};
use crate::fsutil;
use crate::manifest::{self, Manifest};
use crate::paths;
use crate::progress::{NoProgress, Progress};
use crate::source::ArchiveSource;

/// How to import.
pub struct ImportOptions<'a> {
    /// The experiments folder; the experiment lands in `target_dir/NAME`.
    pub target_dir: PathBuf,
    /// Check the sidecar checksum and every file against the manifest (default). Structural
    /// safety checks always run.
    pub validate: bool,
    /// Replace an existing experiment of the same name, whole.
    pub force: bool,
    /// Decompression-bomb guards.
    pub limits: Limits,
    /// Receives byte progress (compressed bytes).
    pub progress: &'a dyn Progress,
}

impl ImportOptions<'_> {
    /// Validate, never overwrite, no progress.
    pub fn new(target_dir: impl Into<PathBuf>) -> ImportOptions<'static> {
        ImportOptions {
            target_dir: target_dir.into(),
            validate: true,
            force: false,
            limits: Limits::default(),
            progress: &NoProgress,
        }
    }
}

/// What an import did.
#[derive(Debug)]
pub struct ImportReport {
    /// The experiment's name.
    pub name: String,
    /// Where it now lives.
    pub experiment_dir: PathBuf,
    /// Its manifest, if the archive had one.
    pub manifest: Option<Manifest>,
    /// Number of files and their total size.
    pub num_files: u64,
    /// Total bytes of the files.
    pub total_bytes: u64,
    /// Whether it replaced an existing experiment (`--force`).
    pub replaced: bool,
    /// Things the user should know that did not stop the import (legacy formats, ...).
    pub warnings: Vec<String>,
}

/// Imports `archive` (a `.tar.gz`, or a split archive given by any part) into
/// `options.target_dir/NAME`.
///
/// With `validate`, a sidecar beside the archive must agree with the archive's SHA-256, and every
/// file must match the manifest: a mismatching, missing or unlisted file fails the import, naming
/// the file. Everything is written to a staging folder inside the target folder first and moved
/// into place with one rename, so a failure leaves the target as it was.
///
/// ```
/// # fn main() -> artifact_lib::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let experiment = dir.path().join("demo");
/// std::fs::create_dir_all(&experiment).unwrap();
/// std::fs::write(experiment.join("validation_metrics.json"), r#"{"clean_accuracy": 0.9}"#).unwrap();
/// let packaged = artifact_lib::package_experiment(
///     &experiment,
///     &artifact_lib::PackageOptions::new(dir.path().join("packages")),
/// )?;
///
/// let options = artifact_lib::ImportOptions::new(dir.path().join("elsewhere"));
/// let report = artifact_lib::import_experiment(&packaged.archive_path, &options)?;
/// assert_eq!(report.name, "demo");
/// assert!(report.experiment_dir.join("validation_metrics.json").is_file());
/// # Ok(()) }
/// ```
pub fn import_experiment(archive: &Path, options: &ImportOptions) -> Result<ImportReport> {
    let source = ArchiveSource::open(archive)?;
    let expected = if options.validate {
        source.expected_checksum()?
    } else {
        None
    };
    fs::create_dir_all(&options.target_dir).at("creating", &options.target_dir)?;
    fsutil::clean_stale_temps(&options.target_dir);
    let staging = tempfile::Builder::new()
        .prefix(&format!("{}import-", fsutil::temp_prefix()))
        .tempdir_in(&options.target_dir)
        .at("creating a staging folder in", &options.target_dir)?;
    let mut sink = StagingSink {
        staging: staging.path().to_path_buf(),
        experiment: PathBuf::new(),
        target_dir: options.target_dir.clone(),
        force: options.force,
        buffer: vec![0u8; crate::hash::IO_BUFFER],
    };
    let contents = read_checked(
        &source,
        expected.as_ref(),
        &mut sink,
        options.limits,
        options.progress,
    )?;
    let mut warnings = Vec::new();
    if options.validate {
        warnings = validate(&source, &contents)?;
    }
    if let Some(manifest) = &contents.manifest {
        create_listed_directories(&sink.experiment, manifest, source.display_path())?;
    }
    let destination = options.target_dir.join(&contents.name);
    let replaced = move_into_place(
        &staging,
        &sink.experiment,
        &destination,
        &contents.name,
        options.force,
    )?;
    Ok(ImportReport {
        name: contents.name.clone(),
        experiment_dir: destination,
        num_files: contents.files.len() as u64,
        total_bytes: contents.files.values().map(|(size, _)| size).sum(),
        manifest: contents.manifest,
        replaced,
        warnings,
    })
}

/// Reads the whole archive into `sink`, then checks the archive checksum against `expected`
/// (the file that records it, and the checksum).
///
/// When reading fails and a checksum is expected, the archive is hashed once more: a checksum
/// mismatch is the better explanation (the file was damaged in transit) and is reported instead,
/// naming the damaged parts of a split archive.
pub(crate) fn read_checked(
    source: &ArchiveSource,
    expected: Option<&(PathBuf, String)>,
    sink: &mut dyn Sink,
    limits: Limits,
    progress: &dyn Progress,
) -> Result<ArchiveContents> {
    progress.begin(
        &format!("reading {}", source.display_path().display()),
        source.total_size(),
    );
    let read = archive::read_archive(
        source.display_path(),
        source.reader()?,
        sink,
        limits,
        progress,
    );
    progress.finish();
    let mismatch = |actual: String, (recorded_in, checksum): &(PathBuf, String)| {
        if let Some(damaged) = source.damaged_parts() {
            return damaged;
        }
        Error::ArchiveChecksumMismatch {
            archive: source.display_path().to_path_buf(),
            sidecar: recorded_in.clone(),
            expected: checksum.clone(),
            actual,
        }
    };
    match (read, expected) {
        (Ok(contents), Some(expected)) if contents.archive_sha256 != expected.1 => {
            Err(mismatch(contents.archive_sha256, expected))
        }
        (Ok(contents), _) => Ok(contents),
        (Err(err), Some(expected)) => {
            let (actual, _) = crate::hash::sha256_reader(source.reader()?)
                .at("reading", source.display_path())?;
            if actual != expected.1 {
                Err(mismatch(actual, expected))
            } else {
                Err(err)
            }
        }
        (Err(err), None) => Err(err),
    }
}

/// Checks the files read against the manifest; returns warnings for what is tolerated.
pub(crate) fn validate(source: &ArchiveSource, contents: &ArchiveContents) -> Result<Vec<String>> {
    let archive = source.display_path();
    let mut warnings = Vec::new();
    let Some(manifest) = &contents.manifest else {
        warnings.push(format!(
            "{}: no {} (a legacy archive): file contents could not be verified",
            archive.display(),
            manifest::MANIFEST_NAME
        ));
        return Ok(warnings);
    };
    if manifest.is_legacy() {
        warnings.push(format!(
            "{}: manifest written by the Python tools; its paths and checksums were normalised",
            archive.display()
        ));
    }
    if manifest.experiment_name != contents.name {
        warnings.push(format!(
            "{}: manifest names experiment `{}` but the archive holds `{}`",
            archive.display(),
            manifest.experiment_name,
            contents.name
        ));
    }
    let (problems, left_out) = manifest.compare(&contents.files);
    if !problems.is_empty() {
        return Err(Error::Verification {
            subject: archive.to_path_buf(),
            problems,
        });
    }
    if !left_out.is_empty() {
        warnings.push(format!(
            "{}: {} model file(s) listed in the manifest were left out by the Python tools' --no-models: {}",
            archive.display(),
            left_out.len(),
            left_out.join(", ")
        ));
    }
    Ok(warnings)
}

/// Creates folders the manifest lists (empty folders have no files to carry them).
fn create_listed_directories(experiment: &Path, manifest: &Manifest, archive: &Path) -> Result<()> {
    for directory in &manifest.directories {
        let safe = !directory.is_empty()
            && !directory.starts_with('/')
            && directory
                .split('/')
                .all(|c| paths::check_component(c).is_ok());
        if !safe {
            return Err(Error::Verification {
                subject: archive.to_path_buf(),
                problems: vec![Problem::Unlisted {
                    path: format!("{directory} (unsafe folder name in the manifest)"),
                }],
            });
        }
        let path = experiment.join(directory);
        fs::create_dir_all(&path).at("creating", &path)?;
    }
    Ok(())
}

/// Renames the staged experiment to `destination`; with `force`, an existing experiment is moved
/// into the staging folder first (and deleted with it), and put back if the rename fails.
fn move_into_place(
    staging: &TempDir,
    staged: &Path,
    destination: &Path,
    name: &str,
    force: bool,
) -> Result<bool> {
    let exists = destination.symlink_metadata().is_ok();
    if exists && !force {
        return Err(Error::AlreadyExists {
            name: name.to_string(),
            path: destination.to_path_buf(),
        });
    }
    if !exists {
        fs::rename(staged, destination).at("moving the import into", destination)?;
        return Ok(false);
    }
    let previous = staging.path().join(".previous");
    fs::rename(destination, &previous).at("moving aside", destination)?;
    if let Err(err) = fs::rename(staged, destination) {
        let _ = fs::rename(&previous, destination);
        return Err(Error::io("moving the import into", destination, err));
    }
    Ok(true)
}

/// Writes members below `staging/NAME`, refusing to overwrite anything.
struct StagingSink {
    staging: PathBuf,
    experiment: PathBuf,
    target_dir: PathBuf,
    force: bool,
    buffer: Vec<u8>,
}

impl Sink for StagingSink {
    fn begin(&mut self, name: &str) -> Result<()> {
        // Fail before extracting gigabytes, not after.
        let destination = self.target_dir.join(name);
        if !self.force && destination.symlink_metadata().is_ok() {
            return Err(Error::AlreadyExists {
                name: name.to_string(),
                path: destination,
            });
        }
        self.experiment = self.staging.join(name);
        fs::create_dir(&self.experiment).at("creating", &self.experiment)
    }

    fn check_room(&mut self, member: &str, bytes: u64) -> Result<()> {
        let free =
            fs4::available_space(&self.staging).at("checking free space of", &self.staging)?;
        if bytes > free {
            return Err(Error::BadFile {
                path: self.target_dir.clone(),
                reason: format!(
                    "not enough free space: archive member `{member}` needs {bytes} bytes but only {free} are free; free some space or import elsewhere with --target"
                ),
            });
        }
        Ok(())
    }

    fn directory(&mut self, relative: &str) -> Result<()> {
        let path = self.experiment.join(relative);
        fs::create_dir_all(&path).at("creating", &path)
    }

    fn file(&mut self, relative: &str, executable: bool, data: &mut dyn Read) -> Result<()> {
        let path = self.experiment.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).at("creating", parent)?;
        }
        let mut file = create_new(&path, executable)?;
        loop {
            let n = data
                .read(&mut self.buffer)
                .at("reading the archive for", &path)?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buffer[..n]).at("writing", &path)?;
        }
        Ok(())
    }
}

/// Creates a file that must not exist yet, with mode 0644 or 0755 whatever the archive said.
fn create_new(path: &Path, executable: bool) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if executable { 0o755 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = executable;
    options.open(path).at("creating", path)
}
