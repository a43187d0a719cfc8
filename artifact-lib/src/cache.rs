//! The hash cache: SHA-256 of each experiment file keyed by path, size and modification time,
//! so that deciding whether an experiment changed does not re-read unchanged multi-GB weights.
//!
//! A file is hashed again when its size or its modification time (to the nanosecond) differs
//! from the cached one, when the cache is missing or unreadable, or when the caller asks
//! (`--force`). The cache lives beside the experiments, in `.xtask-hash-cache/NAME.json`, and is
//! never committed; losing it costs only time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fsutil;
use crate::manifest::FileEntry;
use crate::progress::Progress;
use crate::scan::{ExperimentScan, SourceFile};

const CACHE_DIR: &str = ".xtask-hash-cache";

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    files: BTreeMap<String, CachedHash>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedHash {
    size: u64,
    modified_ns: i128,
    sha256: String,
}

/// The cached hashes of one experiment folder.
#[derive(Debug)]
pub struct HashCache {
    path: PathBuf,
    files: BTreeMap<String, CachedHash>,
}

fn modified_ns(time: SystemTime) -> i128 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

impl HashCache {
    /// The cache of `experiment_dir` (empty when there is none or it cannot be read).
    pub fn load(experiment_dir: &Path) -> HashCache {
        let name = experiment_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = experiment_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let path = parent.join(CACHE_DIR).join(format!("{name}.json"));
        let files = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
            .map(|c| c.files)
            .unwrap_or_default();
        HashCache { path, files }
    }

    /// The cached SHA-256 of `file`, if its size and time are unchanged.
    pub fn lookup(&self, file: &SourceFile) -> Option<&str> {
        let cached = self.files.get(&file.relative)?;
        (cached.size == file.size && cached.modified_ns == modified_ns(file.modified))
            .then_some(cached.sha256.as_str())
    }

    /// Records hashes just computed for `files`.
    pub fn record(&mut self, files: &[SourceFile], entries: &[FileEntry]) {
        let by_path: BTreeMap<&str, &SourceFile> =
            files.iter().map(|f| (f.relative.as_str(), f)).collect();
        for entry in entries {
            if let Some(source) = by_path.get(entry.path.as_str()) {
                self.files.insert(
                    entry.path.clone(),
                    CachedHash {
                        size: source.size,
                        modified_ns: modified_ns(source.modified),
                        sha256: entry.checksum.clone(),
                    },
                );
            }
        }
    }

    /// Writes the cache, keeping only files still in `scan` (packaged or left out). Failure to write is not an error:
    /// the cache only saves time.
    pub fn save(&mut self, scan: &ExperimentScan) {
        let present: std::collections::BTreeSet<&str> = scan
            .files
            .iter()
            .map(|f| f.relative.as_str())
            .chain(scan.excluded.iter().map(|e| e.path.as_str()))
            .collect();
        self.files.retain(|path, _| present.contains(path.as_str()));
        let file = CacheFile {
            files: std::mem::take(&mut self.files),
        };
        if let Ok(bytes) = serde_json::to_vec(&file) {
            let _ = std::fs::create_dir_all(fsutil::parent_dir(&self.path));
            let _ = fsutil::write_atomically(&self.path, &bytes);
        }
        self.files = file.files;
    }
}

/// The entries of every file of `scan`, from the cache where size and time are unchanged and
/// hashed (on every core) otherwise; the cache is updated and saved. `rehash` ignores the cache.
pub fn hash_with_cache(
    scan: &ExperimentScan,
    rehash: bool,
    progress: &dyn Progress,
) -> Result<Vec<FileEntry>> {
    let mut cache = HashCache::load(&scan.root);
    let mut entries = Vec::with_capacity(scan.files.len());
    let mut misses = Vec::new();
    for file in &scan.files {
        match cache.lookup(file).filter(|_| !rehash) {
            Some(sha) => entries.push(FileEntry {
                path: file.relative.clone(),
                size_bytes: file.size,
                checksum: sha.to_string(),
                modified: Some(crate::manifest::rfc3339(file.modified)),
            }),
            None => misses.push(file.clone()),
        }
    }
    if !misses.is_empty() {
        let hashed = crate::package::hash_files(&scan.name, &misses, progress)?;
        cache.record(&misses, &hashed);
        entries.extend(hashed);
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    cache.save(scan);
    Ok(entries)
}
