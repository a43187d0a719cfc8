//! Reading an experiment archive as a stream: gzip is inflated on its own thread while tar
//! members are checked, hashed and handed to a [`Sink`] on the caller's thread. Nothing here
//! writes to disk; the sink decides.
//!
//! Every member name is checked before the sink sees it: one top-level folder, no absolute or
//! `..` paths, no backslashes, drive letters or control characters, no duplicates (also under
//! case folding), and only regular files and folders — links, devices and FIFOs are refused.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use crate::error::{Error, Result};
use crate::hash::{self, HashingReader};
use crate::manifest::{Manifest, MANIFEST_NAME};
use crate::paths;
use crate::progress::{Progress, ProgressReader};

/// Largest manifest accepted; guards memory against a hostile archive. A manifest of a million
/// files is about 250 MB of JSON, far beyond any real experiment.
const MAX_MANIFEST_BYTES: u64 = 256 << 20;
/// Decompressed bytes per message between the threads.
const CHUNK: usize = 256 * 1024;

/// Guards against decompression bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Refuse once the data expands to more than this multiple of the compressed bytes read;
    /// `None` lifts the guard. Weights expand about 1.1x and text about 10x; 100x is absurd.
    pub max_ratio: Option<u64>,
    /// The ratio is judged only past this many decompressed bytes, so small, very
    /// compressible archives are never refused.
    pub ratio_grace_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ratio: Some(100),
            ratio_grace_bytes: 1 << 30,
        }
    }
}

/// Receives the members of an archive, in archive order, after they passed every check.
pub trait Sink {
    /// The archive's top-level folder, before any member is handed over.
    fn begin(&mut self, name: &str) -> Result<()>;
    /// Called before a file of `bytes` bytes (as its header declares) is handed over; a sink
    /// that writes refuses what would not fit.
    fn check_room(&mut self, member: &str, bytes: u64) -> Result<()> {
        let _ = (member, bytes);
        Ok(())
    }
    /// A folder, `/`-separated relative to the experiment.
    fn directory(&mut self, relative: &str) -> Result<()>;
    /// A regular file; the reader does not need to be read to its end.
    fn file(&mut self, relative: &str, executable: bool, data: &mut dyn Read) -> Result<()>;
}

/// A sink that keeps nothing: for verifying an archive without writing anything.
pub struct DiscardSink;

impl Sink for DiscardSink {
    fn begin(&mut self, _name: &str) -> Result<()> {
        Ok(())
    }
    fn directory(&mut self, _relative: &str) -> Result<()> {
        Ok(())
    }
    fn file(&mut self, _relative: &str, _executable: bool, _data: &mut dyn Read) -> Result<()> {
        Ok(())
    }
}

/// What reading a whole archive found.
#[derive(Debug)]
pub struct ArchiveContents {
    /// The top-level folder name.
    pub name: String,
    /// The manifest, when the archive has one.
    pub manifest: Option<Manifest>,
    /// Every regular file except the manifest: `path -> (size, sha256)`.
    pub files: BTreeMap<String, (u64, String)>,
    /// Every folder that had its own member.
    pub directories: BTreeSet<String>,
    /// SHA-256 of the compressed archive, as read.
    pub archive_sha256: String,
    /// Length of the compressed archive.
    pub archive_size: u64,
}

/// Reads the gzip-compressed tar archive in `raw` (named `archive` in errors), hands each member
/// to `sink`, and returns what it held. `progress` sees compressed bytes.
///
/// Fails on the first damaged, hostile or unexpected member, on a damaged gzip stream, and on
/// any data after the end of the archive.
pub fn read_archive(
    archive: &Path,
    raw: Box<dyn Read + Send + '_>,
    sink: &mut dyn Sink,
    limits: Limits,
    progress: &dyn Progress,
) -> Result<ArchiveContents> {
    let (chunks_tx, chunks_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
    let compressed = AtomicU64::new(0);
    let bomb = AtomicBool::new(false);
    let (members, inflated, expanded) = std::thread::scope(|scope| {
        let inflater = scope.spawn(|| inflate(raw, chunks_tx, &compressed, progress));
        let mut reader = ChannelReader {
            chunks: chunks_rx,
            current: Vec::new(),
            position: 0,
            decompressed: 0,
            compressed: &compressed,
            limits,
            bomb: &bomb,
        };
        let members = read_members(archive, &mut reader, sink);
        let expanded = reader.decompressed;
        drop(reader);
        let inflated = inflater
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the decompression thread panicked")));
        (members, inflated, expanded)
    });
    if bomb.load(Ordering::Relaxed) {
        return Err(Error::archive(
            archive,
            format!(
                "expands to more than {} times its compressed size ({} bytes from {}), which no ML artifact does; refusing a likely decompression bomb (pass --no-ratio-limit if you trust it)",
                limits.max_ratio.unwrap_or_default(),
                expanded,
                compressed.load(Ordering::Relaxed)
            ),
        ));
    }
    match (members, inflated) {
        // A gzip error explains a failed member better than the member's own error does.
        (_, Err(err)) => Err(Error::archive(
            archive,
            format!("damaged or not a .tar.gz ({err}); re-copy or re-download it"),
        )),
        (Err(err), Ok(_)) => Err(err),
        // The reader drains every chunk when it succeeds, so this means a thread went away.
        (Ok(_), Ok(None)) => Err(Error::archive(archive, "decompression stopped early")),
        (Ok(mut contents), Ok(Some(inflated))) => {
            if inflated.trailing > 0 {
                return Err(Error::archive(
                    archive,
                    format!(
                        "{} bytes of unexpected data after the end of the gzip stream; re-copy the archive",
                        inflated.trailing
                    ),
                ));
            }
            contents.archive_sha256 = inflated.sha256;
            contents.archive_size = inflated.size;
            Ok(contents)
        }
    }
}

struct Inflated {
    sha256: String,
    size: u64,
    trailing: u64,
}

/// Inflates `raw` into chunks on `chunks`; returns `None` when the reader hung up first.
fn inflate(
    raw: Box<dyn Read + Send + '_>,
    chunks: mpsc::SyncSender<io::Result<Vec<u8>>>,
    compressed: &AtomicU64,
    progress: &dyn Progress,
) -> io::Result<Option<Inflated>> {
    let counted = CountingReader {
        inner: ProgressReader::new(raw, progress),
        count: compressed,
    };
    let hashing = HashingReader::new(counted);
    let mut decoder =
        flate2::bufread::GzDecoder::new(BufReader::with_capacity(hash::IO_BUFFER, hashing));
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match decoder.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let _ = chunks.send(Err(io::Error::new(err.kind(), err.to_string())));
                    return Err(err);
                }
            }
        }
        if filled == 0 {
            break;
        }
        chunk.truncate(filled);
        if chunks.send(Ok(chunk)).is_err() {
            return Ok(None);
        }
    }
    drop(chunks);
    let mut rest = decoder.into_inner();
    let trailing = io::copy(&mut rest, &mut io::sink())?;
    let (sha256, size, _) = rest.into_inner().finish();
    Ok(Some(Inflated {
        sha256,
        size,
        trailing,
    }))
}

fn refuse(archive: &Path, member: &str, why: impl std::fmt::Display) -> Error {
    Error::archive(archive, format!("member `{member}` {why}; refusing it"))
}

fn read_members(
    archive: &Path,
    reader: &mut ChannelReader<'_>,
    sink: &mut dyn Sink,
) -> Result<ArchiveContents> {
    let tar_error = |err: io::Error| {
        Error::archive(
            archive,
            format!("damaged tar data ({err}); re-copy or re-download it"),
        )
    };
    let mut tar = tar::Archive::new(reader);
    let mut name: Option<String> = None;
    let mut manifest = None;
    let mut files = BTreeMap::new();
    let mut directories = BTreeSet::new();
    let mut folded: HashMap<String, String> = HashMap::new();
    for entry in tar.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let member_bytes = entry.path_bytes().into_owned();
        let member = std::str::from_utf8(&member_bytes)
            .map_err(|_| {
                refuse(
                    archive,
                    &String::from_utf8_lossy(&member_bytes),
                    "has a name that is not valid UTF-8",
                )
            })?
            .to_string();
        let (top, relative) =
            paths::split_member_name(&member).map_err(|why| refuse(archive, &member, why))?;
        match &name {
            None => {
                sink.begin(top)?;
                name = Some(top.to_string());
            }
            Some(first) if first != top => {
                return Err(refuse(
                    archive,
                    &member,
                    format!("lies outside the experiment folder `{first}` (an archive holds exactly one top-level folder)"),
                ))
            }
            Some(_) => {}
        }
        if relative.is_empty() {
            if kind.is_dir() {
                continue;
            }
            return Err(refuse(
                archive,
                &member,
                "is not a folder but has the experiment's name",
            ));
        }
        if let Some(previous) = folded.insert(relative.to_lowercase(), relative.to_string()) {
            let why = if previous == relative {
                "appears twice".to_string()
            } else {
                format!("differs from `{previous}` only by case, so they would collide on Windows and macOS")
            };
            return Err(refuse(archive, &member, why));
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(tar_error)?;
                let executable = entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0);
                if relative == MANIFEST_NAME {
                    if size > MAX_MANIFEST_BYTES {
                        return Err(refuse(
                            archive,
                            &member,
                            format!("is {size} bytes, too large for a manifest"),
                        ));
                    }
                    let mut bytes = Vec::with_capacity(size as usize);
                    entry.read_to_end(&mut bytes).map_err(tar_error)?;
                    let origin = PathBuf::from(format!("{}: {member}", archive.display()));
                    manifest = Some(Manifest::parse(&bytes, &origin)?);
                    sink.file(relative, false, &mut &bytes[..])?;
                    continue;
                }
                sink.check_room(&member, size)?;
                let mut hashing = HashingReader::new(&mut entry);
                sink.file(relative, executable, &mut hashing)?;
                io::copy(&mut hashing, &mut io::sink()).map_err(tar_error)?;
                let (sha, read, _) = hashing.finish();
                if read != size {
                    return Err(tar_error(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("`{member}` ends after {read} of {size} bytes"),
                    )));
                }
                files.insert(relative.to_string(), (read, sha));
            }
            tar::EntryType::Directory => {
                sink.directory(relative)?;
                directories.insert(relative.to_string());
            }
            other => return Err(refuse(archive, &member, describe_refused(other))),
        }
    }
    // Past the end-of-archive blocks only zero padding may follow.
    let rest = tar.into_inner();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = rest.read(&mut buf).map_err(tar_error)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(Error::archive(
                archive,
                "unexpected data after the end of the tar archive; re-copy the archive",
            ));
        }
    }
    let name = name.ok_or_else(|| Error::archive(archive, "the archive is empty"))?;
    Ok(ArchiveContents {
        name,
        manifest,
        files,
        directories,
        archive_sha256: String::new(),
        archive_size: 0,
    })
}

fn describe_refused(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => {
            "is a symbolic link; archives may hold only files and folders".into()
        }
        tar::EntryType::Link => "is a hard link; archives may hold only files and folders".into(),
        tar::EntryType::Char | tar::EntryType::Block => "is a device file".into(),
        tar::EntryType::Fifo => "is a FIFO".into(),
        tar::EntryType::GNUSparse => "is a sparse file, which is not supported".into(),
        other => format!(
            "has an unsupported entry type ({:?})",
            other.as_byte() as char
        ),
    }
}

/// Counts bytes read into a shared counter (the compressed bytes, for the ratio guard).
struct CountingReader<'c, R> {
    inner: R,
    count: &'c AtomicU64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads the chunks the inflater thread sends, in order, and trips the bomb guard.
struct ChannelReader<'a> {
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    position: usize,
    decompressed: u64,
    compressed: &'a AtomicU64,
    limits: Limits,
    bomb: &'a AtomicBool,
}

impl Read for ChannelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.decompressed += chunk.len() as u64;
                    self.current = chunk;
                    self.position = 0;
                    self.check_ratio()?;
                }
                Ok(Err(err)) => return Err(err),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

impl ChannelReader<'_> {
    fn check_ratio(&self) -> io::Result<()> {
        let Some(max_ratio) = self.limits.max_ratio else {
            return Ok(());
        };
        let compressed = self.compressed.load(Ordering::Relaxed).max(1);
        if self.decompressed > self.limits.ratio_grace_bytes
            && self.decompressed / compressed > max_ratio
        {
            self.bomb.store(true, Ordering::Relaxed);
            return Err(io::Error::other("decompression bomb"));
        }
        Ok(())
    }
}
