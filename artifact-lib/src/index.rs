//! `artifacts/artifact_index.json`: a lockfile for experiments, committed to git and checked in
//! CI. The same experiments and archives always give the same bytes: sorted keys, and no
//! wall-clock fields. Updates take an exclusive lock and replace the file atomically.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::layout::Layout;
use crate::manifest::{Manifest, Sidecar};
use crate::progress::Progress;
use crate::scan;

/// The index format version. The Python tool's index has none and reads as 0.
pub const INDEX_FORMAT_VERSION: u32 = 2;

/// The whole index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// [`INDEX_FORMAT_VERSION`].
    pub format_version: u32,
    /// Experiments by name.
    pub experiments: BTreeMap<String, IndexEntry>,
}

/// One experiment of the index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// [`crate::hash::content_digest`] of the experiment's files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    /// Number of files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_files: Option<u64>,
    /// Their total size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_size_bytes: Option<u64>,
    /// Archives of this experiment in the packages folder, sorted by file name.
    #[serde(default)]
    pub archives: Vec<ArchiveRecord>,
}

/// One archive of an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    /// File name in the packages folder.
    pub file: String,
    /// SHA-256 of the archive.
    pub sha256: String,
    /// Size of the archive.
    pub size_bytes: u64,
    /// Whether model weights are inside.
    pub includes_models: bool,
    /// Content digest of what the archive holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
}

impl Index {
    /// Reads the index at `path`: ours, or the Python tool's (whose entries keep their counts).
    /// A missing file is an empty index.
    pub fn read(path: &Path) -> Result<Index> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Index::new()),
            Err(err) => return Err(Error::io("reading", path, err)),
        };
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|err| Error::bad_file(path, format!("not a valid index: {err}")))?;
        let version = value
            .get("format_version")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if version > u64::from(INDEX_FORMAT_VERSION) {
            return Err(Error::bad_file(
                path,
                "index format is newer than this tool; update the tool",
            ));
        }
        if version > 0 {
            return serde_json::from_value(value)
                .map_err(|err| Error::bad_file(path, format!("not a valid index: {err}")));
        }
        // The Python tool's index: {"experiments": {name: {path, imported_at, num_files, size_mb}}}.
        let mut index = Index::new();
        if let Some(experiments) = value.get("experiments").and_then(Value::as_object) {
            for (name, entry) in experiments {
                index.experiments.insert(
                    name.clone(),
                    IndexEntry {
                        num_files: entry.get("num_files").and_then(Value::as_u64),
                        ..IndexEntry::default()
                    },
                );
            }
        }
        Ok(index)
    }

    /// An empty index of the current format.
    pub fn new() -> Index {
        Index {
            format_version: INDEX_FORMAT_VERSION,
            experiments: BTreeMap::new(),
        }
    }

    /// Pretty JSON with a trailing newline: the exact bytes written.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("index serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Writes the index atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        fsutil::write_atomically(path, &self.to_json())
    }
}

/// Holds the index's lock file open and locked; dropping it (or the process dying) unlocks.
pub struct IndexLock {
    _file: File,
}

/// Takes the exclusive lock on the index at `path`, waiting for other runs to finish with it.
pub fn lock(path: &Path) -> Result<IndexLock> {
    let lock_path = path.with_extension("json.lock");
    std::fs::create_dir_all(fsutil::parent_dir(path)).at("creating", fsutil::parent_dir(path))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .at("opening", &lock_path)?;
    file.lock().at("locking", &lock_path)?;
    Ok(IndexLock { _file: file })
}

/// Applies `change` to the index of `layout` under its lock and writes it back atomically.
pub fn update(layout: &Layout, change: impl FnOnce(&mut Index)) -> Result<()> {
    let _lock = lock(&layout.index_path)?;
    let mut index = Index::read(&layout.index_path)?;
    index.format_version = INDEX_FORMAT_VERSION;
    change(&mut index);
    index.write(&layout.index_path)
}

/// The entry fields that describe the experiment's own files, from its manifest.
pub fn set_contents(entry: &mut IndexEntry, manifest: &Manifest) {
    entry.content_digest = Some(manifest.content_digest());
    entry.num_files = Some(manifest.num_files);
    entry.total_size_bytes = Some(manifest.total_size_bytes);
}

/// Adds or replaces an archive record, keeping the list sorted.
pub fn set_archive(entry: &mut IndexEntry, record: ArchiveRecord) {
    entry.archives.retain(|a| a.file != record.file);
    entry.archives.push(record);
    entry.archives.sort_by(|a, b| a.file.cmp(&b.file));
}

/// The archive record a sidecar describes. `size_bytes` falls back to the file's size for the
/// Python tools' sidecars.
pub fn archive_record(
    sidecar_path: &Path,
    sidecar: &Sidecar,
    archive_path: &Path,
) -> ArchiveRecord {
    let size = sidecar
        .archive_size_bytes
        .or_else(|| archive_path.metadata().ok().map(|m| m.len()))
        .unwrap_or(0);
    let file = archive_path
        .file_name()
        .or_else(|| sidecar_path.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ArchiveRecord {
        file,
        sha256: sidecar.checksum.clone(),
        size_bytes: size,
        includes_models: sidecar.includes_models,
        content_digest: sidecar.content_digest.clone(),
    }
}

/// The entry of the experiment folder `dir`, its files hashed through the hash cache.
pub fn experiment_contents(
    dir: &Path,
    rehash: bool,
    progress: &dyn Progress,
) -> Result<IndexEntry> {
    let scan = scan::scan_experiment(dir, None)?;
    let entries = cache::hash_with_cache(&scan, rehash, progress)?;
    let manifest = Manifest::new(&scan.name, String::new(), entries, Vec::new(), Vec::new());
    let mut entry = IndexEntry::default();
    set_contents(&mut entry, &manifest);
    Ok(entry)
}

/// Builds the index from what is present: every experiment folder (hashed through the cache)
/// and every archive with a sidecar in the packages folder. An experiment known only from its
/// archives takes its contents from the archive that includes models (else any archive).
pub fn build(layout: &Layout, progress: &dyn Progress) -> Result<Index> {
    let mut index = Index::new();
    for dir in layout.experiment_dirs()? {
        let name = scan::experiment_name(&dir)?;
        let entry = experiment_contents(&dir, false, progress)?;
        index.experiments.insert(name, entry);
    }
    for (sidecar_path, sidecar, archive_path) in sidecars(&layout.packages_dir)? {
        let entry = index
            .experiments
            .entry(sidecar.experiment_name.clone())
            .or_default();
        set_archive(
            entry,
            archive_record(&sidecar_path, &sidecar, &archive_path),
        );
    }
    for entry in index.experiments.values_mut() {
        if entry.content_digest.is_none() {
            let best = entry
                .archives
                .iter()
                .find(|a| a.includes_models)
                .or(entry.archives.first());
            entry.content_digest = best.and_then(|a| a.content_digest.clone());
        }
    }
    Ok(index)
}

/// Every `*_metadata.json` in `dir` whose archive exists: `(sidecar path, sidecar, archive)`.
fn sidecars(dir: &Path) -> Result<Vec<(std::path::PathBuf, Sidecar, std::path::PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io("reading", dir, err)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.at("reading", dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix("_metadata.json") else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let archive = dir.join(format!("{stem}.tar.gz"));
        let split_listing = crate::split::listing_path(&archive);
        if !archive.is_file() && !split_listing.is_file() {
            continue;
        }
        let sidecar = Sidecar::read(&path)?;
        found.push((path, sidecar, archive));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// One difference between the index on disk and what is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// In both, but different.
    Changed { name: String, what: String },
    /// In the index, not present.
    Missing { name: String },
    /// Present, not in the index.
    New { name: String },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Changed { name, what } => write!(f, "changed: {name}: {what}"),
            Drift::Missing { name } => write!(f, "missing: {name} is in the index but not present"),
            Drift::New { name } => write!(f, "new: {name} is present but not in the index"),
        }
    }
}

/// Compares the recorded index with the one built from what is present.
pub fn drift(recorded: &Index, present: &Index) -> Vec<Drift> {
    let mut drifts = Vec::new();
    for (name, old) in &recorded.experiments {
        match present.experiments.get(name) {
            None => drifts.push(Drift::Missing { name: name.clone() }),
            Some(new) if new != old => drifts.push(Drift::Changed {
                name: name.clone(),
                what: describe_change(old, new),
            }),
            Some(_) => {}
        }
    }
    for name in present.experiments.keys() {
        if !recorded.experiments.contains_key(name) {
            drifts.push(Drift::New { name: name.clone() });
        }
    }
    drifts
}

fn describe_change(old: &IndexEntry, new: &IndexEntry) -> String {
    let show = |v: &Option<String>| {
        v.as_deref()
            .map_or("none".to_string(), |d| d.chars().take(12).collect())
    };
    let mut parts = Vec::new();
    if old.content_digest != new.content_digest {
        parts.push(format!(
            "content digest {} -> {}",
            show(&old.content_digest),
            show(&new.content_digest)
        ));
    }
    if old.num_files != new.num_files || old.total_size_bytes != new.total_size_bytes {
        parts.push(format!(
            "{} files / {} bytes -> {} files / {} bytes",
            old.num_files.map_or("?".into(), |n| n.to_string()),
            old.total_size_bytes.map_or("?".into(), |n| n.to_string()),
            new.num_files.map_or("?".into(), |n| n.to_string()),
            new.total_size_bytes.map_or("?".into(), |n| n.to_string()),
        ));
    }
    if old.archives != new.archives {
        let names = |e: &IndexEntry| {
            e.archives
                .iter()
                .map(|a| format!("{}@{}", a.file, &a.sha256[..a.sha256.len().min(12)]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        parts.push(format!("archives [{}] -> [{}]", names(old), names(new)));
    }
    parts.join("; ")
}

/// Records a packaged archive (and, when it includes models, the experiment's contents). Only
/// archives in the layout's packages folder are recorded, as [`build`] sees only those.
pub fn record_package(layout: &Layout, report: &crate::package::PackageReport) -> Result<()> {
    let same_dir = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let in_packages = same_dir(
        fsutil::parent_dir(&report.archive_path),
        &layout.packages_dir,
    );
    update(layout, |index| {
        let entry = index
            .experiments
            .entry(report.manifest.experiment_name.clone())
            .or_default();
        if report.sidecar.includes_models {
            set_contents(entry, &report.manifest);
        }
        if in_packages {
            set_archive(
                entry,
                archive_record(&report.sidecar_path, &report.sidecar, &report.archive_path),
            );
        }
    })
}

/// Records an imported experiment's contents.
pub fn record_import(layout: &Layout, report: &crate::import::ImportReport) -> Result<()> {
    let contents = match &report.manifest {
        Some(manifest) if !manifest.is_legacy() => {
            let mut entry = IndexEntry::default();
            set_contents(&mut entry, manifest);
            entry
        }
        // Python manifests may list files the archive did not carry: describe what is here.
        _ => experiment_contents(&report.experiment_dir, false, &crate::progress::NoProgress)?,
    };
    update(layout, |index| {
        let entry = index.experiments.entry(report.name.clone()).or_default();
        entry.content_digest = contents.content_digest;
        entry.num_files = contents.num_files;
        entry.total_size_bytes = contents.total_size_bytes;
    })
}
