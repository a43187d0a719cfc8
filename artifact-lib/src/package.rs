//! `package`: one pass over an experiment (walk -> read once -> hash + tar + gzip -> temporary
//! file -> rename), then the sidecar.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cache::{self, HashCache};
use crate::error::{Error, IoContext, Result};
use crate::filter::ModelFilter;
use crate::fsutil;
use crate::hash::{self, HashingReader, HashingWriter};
use crate::manifest::{self, FileEntry, Manifest, Sidecar, MANIFEST_NAME};
use crate::progress::{NoProgress, Progress, ProgressReader};
use crate::scan::{self, ExperimentScan, SourceFile};

/// How to package.
pub struct PackageOptions<'a> {
    /// Where `NAME.tar.gz` and `NAME_metadata.json` go (created if missing).
    pub output_dir: PathBuf,
    /// Leave out what `model_filter` matches.
    pub no_models: bool,
    /// What counts as model weights.
    pub model_filter: ModelFilter,
    /// `SOURCE_DATE_EPOCH`: when set, every time in the archive, manifest and sidecar is this
    /// one, so the same content always gives the same bytes.
    pub source_date_epoch: Option<i64>,
    /// Receives byte progress.
    pub progress: &'a dyn Progress,
}

impl PackageOptions<'_> {
    /// Defaults: output to `output_dir`, models included, default patterns, `SOURCE_DATE_EPOCH`
    /// from the environment, no progress.
    pub fn new(output_dir: impl Into<PathBuf>) -> PackageOptions<'static> {
        PackageOptions {
            output_dir: output_dir.into(),
            no_models: false,
            model_filter: ModelFilter::default(),
            source_date_epoch: source_date_epoch_from_env(),
            progress: &NoProgress,
        }
    }
}

/// `SOURCE_DATE_EPOCH` from the environment, when it is a valid integer.
pub fn source_date_epoch_from_env() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

/// What `package_experiment` wrote.
#[derive(Debug, Clone)]
pub struct PackageReport {
    /// The `.tar.gz`.
    pub archive_path: PathBuf,
    /// The `_metadata.json` beside it.
    pub sidecar_path: PathBuf,
    /// The manifest stored in the archive.
    pub manifest: Manifest,
    /// The sidecar written.
    pub sidecar: Sidecar,
}

/// Packages the experiment folder `experiment_dir` into `OUTPUT/NAME.tar.gz` plus its sidecar.
///
/// Every file is read exactly once; its SHA-256 is computed as it streams into the archive.
/// Both outputs are written under temporary names and renamed into place, so a crash never
/// leaves a partial file under a final name. Fails, naming the file, when a file changes while it
/// is read, or when the folder holds something that cannot be packaged (see [`scan`]).
///
/// ```
/// # fn main() -> artifact_lib::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let experiment = dir.path().join("models/backdoored/demo");
/// std::fs::create_dir_all(experiment.join("logs")).unwrap();
/// std::fs::write(experiment.join("config.json"), "{}").unwrap();
///
/// let options = artifact_lib::PackageOptions::new(dir.path().join("artifacts/packages"));
/// let report = artifact_lib::package_experiment(&experiment, &options)?;
/// assert!(report.archive_path.ends_with("demo.tar.gz"));
/// assert_eq!(report.manifest.num_files, 1);
/// assert_eq!(report.manifest.directories, ["logs"]);
/// # Ok(()) }
/// ```
pub fn package_experiment(
    experiment_dir: &Path,
    options: &PackageOptions,
) -> Result<PackageReport> {
    let leave_out = options.no_models.then_some(&options.model_filter);
    let scan = scan::scan_experiment(experiment_dir, leave_out)?;
    package_scanned(&scan, options)
}

/// Packages what `scan` found; every file must still be as it was when walked.
fn package_scanned(scan: &ExperimentScan, options: &PackageOptions) -> Result<PackageReport> {
    let archive_name = format!("{}.tar.gz", scan.name);
    let archive_path = options.output_dir.join(&archive_name);
    let sidecar_path = manifest::sidecar_path(&archive_path);
    fsutil::clean_stale_temps(&options.output_dir);

    let created_at = match options.source_date_epoch {
        Some(epoch) => manifest::rfc3339_unix(epoch),
        None => manifest::rfc3339(SystemTime::now()),
    };
    let temp = fsutil::temp_file_for(&options.output_dir, &archive_name)?;
    let file = temp.as_file().try_clone().at("opening", temp.path())?;
    let counted = HashingWriter::new(BufWriter::with_capacity(hash::IO_BUFFER, file));
    let gzip = crate::gzip::Encoder::new(counted);
    let mut tar = TarWriter::new(gzip, &scan.name, options.source_date_epoch);

    options
        .progress
        .begin(&format!("packaging {}", scan.name), scan.total_bytes());
    let mut entries = Vec::with_capacity(scan.files.len());
    let result = (|| -> Result<()> {
        for directory in &scan.directories {
            tar.directory(directory).at("writing", temp.path())?;
        }
        for source in &scan.files {
            entries.push(tar.file(source, options.progress)?);
        }
        Ok(())
    })();
    options.progress.finish();
    result?;

    let manifest = Manifest::new(
        &scan.name,
        created_at.clone(),
        entries,
        scan.directories.clone(),
        scan.excluded.clone(),
    );
    let manifest_mtime = options
        .source_date_epoch
        .unwrap_or_else(|| unix_seconds(SystemTime::now()));
    tar.bytes(MANIFEST_NAME, &manifest.to_json(), manifest_mtime)
        .at("writing", temp.path())?;
    let counted = tar.finish().at("writing", temp.path())?;
    let (archive_sha, archive_size, buffered) = counted.finish();
    buffered
        .into_inner()
        .map_err(|err| Error::io("writing", temp.path(), err.into_error()))?;
    fsutil::persist(temp, &archive_path)?;

    let sidecar = Sidecar {
        format_version: manifest::FORMAT_VERSION,
        experiment_name: scan.name.clone(),
        package_path: archive_name,
        created_at,
        total_size_mb: manifest::mib(archive_size),
        num_files: manifest.num_files,
        checksum: archive_sha,
        includes_models: !options.no_models,
        archive_size_bytes: Some(archive_size),
        content_size_bytes: Some(manifest.total_size_bytes),
        content_digest: manifest.content_digest.clone(),
    };
    fsutil::write_atomically(&sidecar_path, &sidecar.to_json())?;
    let mut cache = HashCache::load(&scan.root);
    cache.record(&scan.files, &manifest.files);
    cache.save(scan);
    Ok(PackageReport {
        archive_path,
        sidecar_path,
        manifest,
        sidecar,
    })
}

/// The outcome of [`package_if_changed`].
#[derive(Debug, Clone)]
pub enum PackageOutcome {
    /// A new archive was written.
    Packaged(Box<PackageReport>),
    /// The archive already holds exactly this content; nothing was written.
    UpToDate {
        /// The existing archive.
        archive_path: PathBuf,
    },
}

/// Packages `experiment_dir` unless its archive in the output folder already holds exactly the
/// same files: same `--no-models` choice, and the same content digest, computed through the
/// [`cache`] so unchanged files (same size and modification time) are not read again. `force`
/// always packages.
pub fn package_if_changed(
    experiment_dir: &Path,
    options: &PackageOptions,
    force: bool,
) -> Result<PackageOutcome> {
    if !force {
        if let Some(archive_path) = up_to_date(experiment_dir, options)? {
            return Ok(PackageOutcome::UpToDate { archive_path });
        }
    }
    package_experiment(experiment_dir, options)
        .map(|report| PackageOutcome::Packaged(Box::new(report)))
}

fn up_to_date(experiment_dir: &Path, options: &PackageOptions) -> Result<Option<PathBuf>> {
    let name = scan::experiment_name(experiment_dir)?;
    let archive_path = options.output_dir.join(format!("{name}.tar.gz"));
    let Ok(sidecar) = Sidecar::read(&manifest::sidecar_path(&archive_path)) else {
        return Ok(None);
    };
    let archive_size = archive_path.metadata().ok().map(|m| m.len());
    let Some(recorded) = sidecar.content_digest.as_deref() else {
        return Ok(None);
    };
    if sidecar.includes_models == options.no_models || archive_size != sidecar.archive_size_bytes {
        return Ok(None);
    }
    let leave_out = options.no_models.then_some(&options.model_filter);
    let scan = scan::scan_experiment(experiment_dir, leave_out)?;
    let entries = cache::hash_with_cache(&scan, false, options.progress)?;
    let digest = hash::content_digest(
        entries
            .iter()
            .map(|e| (e.path.as_str(), e.size_bytes, e.checksum.as_str())),
    );
    Ok((digest == recorded).then_some(archive_path))
}

/// Hashes every file of an experiment folder (on all cores) and returns its manifest, without
/// writing anything. The folder's own `artifact_manifest.json` is not part of it.
///
/// ```
/// # fn main() -> artifact_lib::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("training_metrics.json"), "{}").unwrap();
/// let manifest = artifact_lib::create_manifest(dir.path())?;
/// assert_eq!(manifest.files[0].path, "training_metrics.json");
/// assert_eq!(manifest.files[0].checksum.len(), 64);
/// # Ok(()) }
/// ```
pub fn create_manifest(experiment_dir: &Path) -> Result<Manifest> {
    let scan = scan::scan_experiment(experiment_dir, None)?;
    let entries = hash_files(&scan.name, &scan.files, &NoProgress)?;
    Ok(Manifest::new(
        &scan.name,
        manifest::rfc3339(SystemTime::now()),
        entries,
        scan.directories,
        Vec::new(),
    ))
}

/// Hashes `files` (of experiment `name`) on every core, checking each against the size and time
/// seen when walking.
pub(crate) fn hash_files(
    name: &str,
    files: &[SourceFile],
    progress: &dyn Progress,
) -> Result<Vec<FileEntry>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let total: u64 = files.iter().map(|f| f.size).sum();
    progress.begin(&format!("hashing {name}"), total);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<FileEntry>>>> =
        Mutex::new((0..files.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(files.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(source) = files.get(i) else {
                    break;
                };
                let entry = hash_one(source, progress);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(entry);
            });
        }
    });
    progress.finish();
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every file was hashed"))
        .collect()
}

fn hash_one(source: &SourceFile, progress: &dyn Progress) -> Result<FileEntry> {
    let file = File::open(&source.path).at("opening", &source.path)?;
    let mut reader = HashingReader::new(ProgressReader::new(file.take(source.size), progress));
    let mut buf = vec![0u8; hash::IO_BUFFER];
    while reader.read(&mut buf).at("reading", &source.path)? != 0 {}
    let (checksum, read, _) = reader.finish();
    check_unchanged(source, read)?;
    Ok(entry_for(source, checksum, None))
}

/// The manifest entry of `source`; with `SOURCE_DATE_EPOCH`, its time is the epoch.
fn entry_for(source: &SourceFile, checksum: String, source_date_epoch: Option<i64>) -> FileEntry {
    let modified = match source_date_epoch {
        Some(epoch) => manifest::rfc3339_unix(epoch),
        None => manifest::rfc3339(source.modified),
    };
    FileEntry {
        path: source.relative.clone(),
        size_bytes: source.size,
        checksum,
        modified: Some(modified),
    }
}

/// Fails when `source` no longer has the size and time it had when walked, or yielded fewer
/// bytes than its size.
fn check_unchanged(source: &SourceFile, bytes_read: u64) -> Result<()> {
    let changed = |what: String| Error::ChangedDuringPackaging {
        path: source.path.clone(),
        what,
    };
    if bytes_read != source.size {
        return Err(changed(format!(
            "shrank from {} to {bytes_read} bytes",
            source.size
        )));
    }
    let now = std::fs::metadata(&source.path).at("reading", &source.path)?;
    if now.len() != source.size {
        return Err(changed(format!(
            "grew from {} to {} bytes",
            source.size,
            now.len()
        )));
    }
    if now.modified().ok() != Some(source.modified) {
        return Err(changed("was modified".to_string()));
    }
    Ok(())
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// How much of each file decides its compression level.
const SAMPLE_BYTES: usize = 64 * 1024;

/// Writes tar members under `NAME/` with normalised metadata: uid/gid 0, no owner names, mode
/// 0644 or 0755, and the file's mtime (or `SOURCE_DATE_EPOCH`).
struct TarWriter<W: Write + LevelControl> {
    builder: tar::Builder<W>,
    prefix: String,
    source_date_epoch: Option<i64>,
}

impl<W: Write + LevelControl> TarWriter<W> {
    fn new(out: W, name: &str, source_date_epoch: Option<i64>) -> Self {
        let builder = tar::Builder::new(out);
        TarWriter {
            builder,
            prefix: name.to_string(),
            source_date_epoch,
        }
    }

    fn header(&self, kind: tar::EntryType, size: u64, mode: u32, mtime: i64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.source_date_epoch.unwrap_or(mtime).max(0) as u64);
        header
    }

    fn directory(&mut self, relative: &str) -> std::io::Result<()> {
        let mtime = self.source_date_epoch.unwrap_or(0);
        let mut header = self.header(tar::EntryType::Directory, 0, 0o755, mtime);
        let path = format!("{}/{relative}/", self.prefix);
        self.builder
            .append_data(&mut header, path, std::io::empty())
    }

    /// Streams one file into the archive, hashing it on the way; the compression level is
    /// chosen from its first 64 KiB, which are read once and then chained with the rest.
    fn file(&mut self, source: &SourceFile, progress: &dyn Progress) -> Result<FileEntry> {
        let mut file = File::open(&source.path).at("opening", &source.path)?;
        let mut head = Vec::with_capacity(SAMPLE_BYTES.min(source.size as usize));
        (&mut file)
            .take(SAMPLE_BYTES.min(source.size as usize) as u64)
            .read_to_end(&mut head)
            .at("reading", &source.path)?;
        self.builder
            .get_mut()
            .set_level(crate::gzip::choose_level(&head))
            .at("compressing", &source.path)?;
        let rest = file.take(source.size - head.len() as u64);
        let mode = if source.executable { 0o755 } else { 0o644 };
        let mut header = self.header(
            tar::EntryType::Regular,
            source.size,
            mode,
            unix_seconds(source.modified),
        );
        let mut reader = HashingReader::new(ProgressReader::new(head.chain(rest), progress));
        let path = format!("{}/{}", self.prefix, source.relative);
        self.builder
            .append_data(&mut header, path, &mut reader)
            .map_err(|err| Error::io("archiving", &source.path, err))?;
        let (checksum, read, _) = reader.finish();
        check_unchanged(source, read)?;
        Ok(entry_for(source, checksum, self.source_date_epoch))
    }

    fn bytes(&mut self, relative: &str, bytes: &[u8], mtime: i64) -> std::io::Result<()> {
        let mut header = self.header(tar::EntryType::Regular, bytes.len() as u64, 0o644, mtime);
        let path = format!("{}/{relative}", self.prefix);
        self.builder.append_data(&mut header, path, bytes)
    }

    /// Ends the archive and the gzip stream, returning the underlying writer.
    fn finish(self) -> std::io::Result<W::Inner>
    where
        W: crate::gzip::Finish,
    {
        let gzip = self.builder.into_inner()?;
        gzip.finish()
    }
}

/// A compressed stream whose level can change between members.
trait LevelControl {
    fn set_level(&mut self, level: u32) -> std::io::Result<()>;
}

impl<W: Write> LevelControl for crate::gzip::Encoder<W> {
    fn set_level(&mut self, level: u32) -> std::io::Result<()> {
        crate::gzip::Encoder::set_level(self, level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let experiment = dir.path().join("exp");
        std::fs::create_dir_all(&experiment).unwrap();
        std::fs::write(experiment.join("a.log"), vec![b'a'; 100_000]).unwrap();
        std::fs::write(experiment.join("b.log"), vec![b'b'; 100_000]).unwrap();
        (dir, experiment)
    }

    fn package_after(change: impl FnOnce(&Path)) -> Result<PackageReport> {
        let (dir, experiment) = experiment();
        let scan = scan::scan_experiment(&experiment, None).unwrap();
        change(&experiment);
        let options = PackageOptions::new(dir.path().join("out"));
        let result = package_scanned(&scan, &options);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("out")).unwrap().collect();
        if result.is_err() {
            assert!(left.is_empty(), "a failed package leaves nothing: {left:?}");
        }
        result
    }

    #[test]
    fn a_file_that_grows_while_packaging_fails_naming_it() {
        let err = package_after(|exp| {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(exp.join("b.log"))
                .unwrap();
            file.write_all(b"more").unwrap();
        })
        .unwrap_err();
        assert!(matches!(err, Error::ChangedDuringPackaging { .. }), "{err}");
        assert!(
            err.to_string().contains("b.log") && err.to_string().contains("grew"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_shrinks_while_packaging_fails_naming_it() {
        let err =
            package_after(|exp| std::fs::write(exp.join("a.log"), b"short").unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("a.log") && err.to_string().contains("shrank"),
            "{err}"
        );
    }

    #[test]
    fn a_file_rewritten_in_place_fails_naming_it() {
        let err = package_after(|exp| {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(exp.join("a.log"))
                .unwrap();
            file.set_modified(SystemTime::now() + std::time::Duration::from_secs(60))
                .unwrap();
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("a.log") && err.to_string().contains("modified"),
            "{err}"
        );
    }

    #[test]
    fn unchanged_files_package() {
        let report = package_after(|_| {}).unwrap();
        assert_eq!(report.manifest.num_files, 2);
    }
}
