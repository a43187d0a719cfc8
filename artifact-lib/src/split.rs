//! `split` and `join`: archives cut into parts named as `split -b SIZE ARCHIVE ARCHIVE.part_`
//! names them (so `cat ARCHIVE.part_* > ARCHIVE` works without this tool), plus
//! `ARCHIVE.parts.json` recording every part's size and SHA-256 and the whole archive's.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::{self, HashingWriter};
use crate::manifest::{self, Sidecar};
use crate::progress::{Progress, ProgressReader};

/// The parts listing format version.
pub const PARTS_FORMAT_VERSION: u32 = 1;
/// The default part size: 1 GiB.
pub const DEFAULT_PART_SIZE: u64 = 1 << 30;

/// `ARCHIVE.parts.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartsListing {
    /// [`PARTS_FORMAT_VERSION`].
    pub format_version: u32,
    /// The whole archive's file name.
    pub archive: String,
    /// The whole archive's size.
    pub size_bytes: u64,
    /// The whole archive's SHA-256.
    pub sha256: String,
    /// The size of every part but the last.
    pub part_size_bytes: u64,
    /// The parts, in order.
    pub parts: Vec<PartEntry>,
}

/// One part of a split archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    /// File name, beside the archive.
    pub name: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// SHA-256.
    pub sha256: String,
}

impl PartsListing {
    /// Reads and parses a parts listing.
    pub fn read(path: &Path) -> Result<PartsListing> {
        let bytes = fs::read(path).at("reading", path)?;
        let listing: PartsListing = serde_json::from_slice(&bytes)
            .map_err(|err| Error::bad_file(path, format!("not a valid parts listing: {err}")))?;
        if listing.format_version > PARTS_FORMAT_VERSION {
            return Err(Error::bad_file(
                path,
                "parts listing is newer than this tool; update the tool",
            ));
        }
        for part in &listing.parts {
            let expected_prefix = format!("{}.part_", listing.archive);
            let suffix = part.name.strip_prefix(&expected_prefix).unwrap_or("");
            if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(Error::bad_file(
                    path,
                    format!("`{}` is not a part name of {}", part.name, listing.archive),
                ));
            }
        }
        Ok(listing)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("listing serialises");
        bytes.push(b'\n');
        bytes
    }
}

/// `ARCHIVE.parts.json` for `archive`.
pub fn listing_path(archive: &Path) -> PathBuf {
    append_to_name(archive, ".parts.json")
}

fn append_to_name(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The archive a part or parts listing belongs to: `X.part_ab` and `X.parts.json` give `X`.
pub fn part_base(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    if let Some(base) = name.strip_suffix(".parts.json") {
        return Some(path.with_file_name(base));
    }
    let (base, suffix) = name.rsplit_once(".part_")?;
    (!suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_lowercase()))
        .then(|| path.with_file_name(base))
}

/// The suffix GNU `split` gives part `index`: `aa`..`yz`, then `zaaa`..`zyzz`, then `zzaaaa`...
/// Names sort in part order, so a shell glob lists them right.
pub fn part_suffix(mut index: u64) -> String {
    let mut prefix = String::new();
    let mut width = 2u32;
    loop {
        let capacity = 25 * 26u64.pow(width - 1);
        if index < capacity {
            let mut letters = vec![b'a'; width as usize];
            for slot in letters.iter_mut().rev() {
                *slot = b'a' + (index % 26) as u8;
                index /= 26;
            }
            return prefix + std::str::from_utf8(&letters).expect("ascii");
        }
        index -= capacity;
        prefix.push('z');
        width += 1;
    }
}

/// The path of part `index` of `archive`.
pub fn part_path(archive: &Path, index: u64) -> PathBuf {
    append_to_name(archive, &format!(".part_{}", part_suffix(index)))
}

/// The parts of `archive` present beside it, in order.
pub fn find_parts(archive: &Path) -> Result<Vec<PathBuf>> {
    let dir = fsutil::parent_dir(archive);
    let prefix = format!(
        "{}.part_",
        archive.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut parts = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(parts),
        Err(err) => return Err(Error::io("reading", dir, err)),
    };
    for entry in entries {
        let entry = entry.at("reading", dir)?;
        let name = entry.file_name();
        let Some(suffix) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_lowercase()) {
            parts.push(entry.path());
        }
    }
    parts.sort();
    Ok(parts)
}

/// Checks that the parts present are exactly the ones expected, by name and size: those in the
/// parts listing when there is one, otherwise an unbroken `aa, ab, ...` sequence. The error names
/// every missing, extra, short or long part.
pub fn check_parts_listing(archive: &Path, parts: &[PathBuf]) -> Result<()> {
    let listing_file = listing_path(archive);
    let present: Vec<String> = parts
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut problems = Vec::new();
    if listing_file.is_file() {
        let listing = PartsListing::read(&listing_file)?;
        let expected: BTreeSet<&str> = listing.parts.iter().map(|p| p.name.as_str()).collect();
        for part in &listing.parts {
            let path = fsutil::parent_dir(archive).join(&part.name);
            match path.metadata() {
                Err(_) => problems.push(format!("{} is missing", part.name)),
                Ok(meta) if meta.len() < part.size_bytes => problems.push(format!(
                    "{} is short ({} of {} bytes)",
                    part.name,
                    meta.len(),
                    part.size_bytes
                )),
                Ok(meta) if meta.len() > part.size_bytes => problems.push(format!(
                    "{} is too long ({} bytes, expected {})",
                    part.name,
                    meta.len(),
                    part.size_bytes
                )),
                Ok(_) => {}
            }
        }
        for name in &present {
            if !expected.contains(name.as_str()) {
                problems.push(format!(
                    "{name} is not listed in {}",
                    listing_file.display()
                ));
            }
        }
    } else {
        for (index, name) in present.iter().enumerate() {
            let want = format!(
                "{}.part_{}",
                archive.file_name().unwrap_or_default().to_string_lossy(),
                part_suffix(index as u64)
            );
            if *name != want {
                problems.push(format!("{want} is missing (found {name} in its place)"));
                break;
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(parts_error(archive, &problems))
    }
}

fn parts_error(archive: &Path, problems: &[String]) -> Error {
    Error::archive(
        archive,
        format!(
            "split archive: {}; re-copy the part(s) named",
            problems.join("; ")
        ),
    )
}

/// Hashes every part and names each whose SHA-256 differs from `listing`.
pub fn check_part_contents(
    archive: &Path,
    listing: &PartsListing,
    parts: &[PathBuf],
) -> Result<()> {
    let mut corrupt = Vec::new();
    for (part, entry) in parts.iter().zip(&listing.parts) {
        let (sha, _) = hash::sha256_file(part)?;
        if sha != entry.sha256 {
            corrupt.push(format!(
                "{} is corrupt (SHA-256 {sha}, expected {})",
                entry.name, entry.sha256
            ));
        }
    }
    if corrupt.is_empty() {
        Ok(())
    } else {
        Err(parts_error(archive, &corrupt))
    }
}

/// Parses a size like `1G`, `512M`, `100K` or `4096` (binary units, as `split -b` takes them).
pub fn parse_size(text: &str) -> Result<u64> {
    let invalid = || {
        Error::Invalid(format!(
            "`{text}` is not a size: use a number with an optional K, M, G or T suffix, e.g. 1G"
        ))
    };
    let trimmed = text.trim();
    let unit_at = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(unit_at);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let shift = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(invalid()),
    };
    let size = number.checked_mul(1 << shift).ok_or_else(invalid)?;
    if size == 0 {
        return Err(Error::Invalid(
            "the part size must be at least one byte".into(),
        ));
    }
    Ok(size)
}

/// Splits `archive` into parts of `part_size` bytes beside it and writes the parts listing.
///
/// The archive is read once. When a sidecar is beside it, the archive must match its checksum.
/// Parts are written under temporary names and renamed when all are complete; parts of an
/// earlier split that the new one does not produce are removed.
pub fn split_archive(
    archive: &Path,
    part_size: u64,
    progress: &dyn Progress,
) -> Result<PartsListing> {
    let archive_name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            Error::Invalid(format!("{} is not an archive file name", archive.display()))
        })?
        .to_string();
    let dir = fsutil::parent_dir(archive);
    fsutil::clean_stale_temps(dir);
    let file = File::open(archive).at("opening", archive)?;
    let total = file.metadata().at("reading", archive)?.len();
    progress.begin(&format!("splitting {archive_name}"), total);
    let mut whole = hash::HashingReader::new(ProgressReader::new(file, progress));
    let mut written = Vec::new();
    let mut buffer = vec![0u8; hash::IO_BUFFER];
    let mut index = 0;
    loop {
        let name = format!("{archive_name}.part_{}", part_suffix(index));
        let temp = fsutil::temp_file_for(dir, &name)?;
        let handle = temp.as_file().try_clone().at("opening", temp.path())?;
        let mut out = HashingWriter::new(BufWriter::with_capacity(hash::IO_BUFFER, handle));
        let mut remaining = part_size;
        while remaining > 0 {
            let want = buffer.len().min(remaining.min(usize::MAX as u64) as usize);
            let n = whole.read(&mut buffer[..want]).at("reading", archive)?;
            if n == 0 {
                break;
            }
            out.write_all(&buffer[..n]).at("writing", temp.path())?;
            remaining -= n as u64;
        }
        let (sha256, size_bytes, buffered) = out.finish();
        buffered
            .into_inner()
            .map_err(|err| Error::io("writing", temp.path(), err.into_error()))?;
        // An archive that is an exact multiple of the part size ends with no empty part, but an
        // empty archive still gets one.
        if size_bytes == 0 && index > 0 {
            break;
        }
        written.push((
            temp,
            PartEntry {
                name,
                size_bytes,
                sha256,
            },
        ));
        index += 1;
        if size_bytes < part_size {
            break;
        }
    }
    progress.finish();
    let (sha256, size_bytes, _) = whole.finish();
    let sidecar = manifest::sidecar_path(archive);
    if sidecar.is_file() {
        let recorded = Sidecar::read(&sidecar)?.checksum;
        if recorded != sha256 {
            return Err(Error::ArchiveChecksumMismatch {
                archive: archive.to_path_buf(),
                sidecar,
                expected: recorded,
                actual: sha256,
            });
        }
    }
    let listing = PartsListing {
        format_version: PARTS_FORMAT_VERSION,
        archive: archive_name,
        size_bytes,
        sha256,
        part_size_bytes: part_size,
        parts: written.iter().map(|(_, entry)| entry.clone()).collect(),
    };
    let keep: BTreeSet<PathBuf> = listing.parts.iter().map(|p| dir.join(&p.name)).collect();
    for (temp, entry) in written {
        fsutil::persist(temp, &dir.join(&entry.name))?;
    }
    for stale in find_parts(archive)? {
        if !keep.contains(&stale) {
            fs::remove_file(&stale).at("removing the stale part", &stale)?;
        }
    }
    fsutil::write_atomically(&listing_path(archive), &listing.to_json())?;
    Ok(listing)
}

/// What `join_parts` wrote and checked.
#[derive(Debug)]
pub struct JoinReport {
    /// The joined archive.
    pub archive: PathBuf,
    /// Its size and SHA-256.
    pub size_bytes: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// Number of parts joined.
    pub num_parts: usize,
    /// What the SHA-256 was checked against (`None`: nothing to check against).
    pub checked_against: Option<PathBuf>,
}

/// Joins the parts of a split archive (given by the archive's name, any part, or the listing)
/// into `output` (default: the archive's own name).
///
/// With a parts listing, every part is checked by name and size before writing and by SHA-256
/// while writing; the error names every missing, extra, short or corrupt part. The result is
/// renamed into place only when the whole archive's SHA-256 matches the listing (or, for parts
/// made by plain `split`, the sidecar when there is one).
pub fn join_parts(
    path: &Path,
    output: Option<&Path>,
    progress: &dyn Progress,
) -> Result<JoinReport> {
    let archive = part_base(path).unwrap_or_else(|| path.to_path_buf());
    let parts = find_parts(&archive)?;
    if parts.is_empty() {
        return Err(Error::Invalid(format!(
            "no parts of {} found (expected {} ...)",
            archive.display(),
            part_path(&archive, 0).display()
        )));
    }
    check_parts_listing(&archive, &parts)?;
    let listing_file = listing_path(&archive);
    let listing = listing_file
        .is_file()
        .then(|| PartsListing::read(&listing_file))
        .transpose()?;
    let destination = output.map_or_else(|| archive.clone(), Path::to_path_buf);
    let destination_name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = fsutil::temp_file_for(fsutil::parent_dir(&destination), &destination_name)?;
    let handle = temp.as_file().try_clone().at("opening", temp.path())?;
    let mut out = HashingWriter::new(BufWriter::with_capacity(hash::IO_BUFFER, handle));
    let total: u64 = parts
        .iter()
        .filter_map(|p| p.metadata().ok())
        .map(|m| m.len())
        .sum();
    progress.begin(&format!("joining {}", archive.display()), total);
    let mut corrupt = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let reader = ProgressReader::new(File::open(part).at("opening", part)?, progress);
        let mut hashing = hash::HashingReader::new(reader);
        std::io::copy(&mut hashing, &mut out).at("joining", part)?;
        let (sha, _, _) = hashing.finish();
        if let Some(entry) = listing.as_ref().map(|l| &l.parts[index]) {
            if entry.sha256 != sha {
                corrupt.push(format!(
                    "{} is corrupt (SHA-256 {sha}, expected {})",
                    entry.name, entry.sha256
                ));
            }
        }
    }
    progress.finish();
    if !corrupt.is_empty() {
        return Err(parts_error(&archive, &corrupt));
    }
    let (sha256, size_bytes, buffered) = out.finish();
    buffered
        .into_inner()
        .map_err(|err| Error::io("writing", temp.path(), err.into_error()))?;
    let sidecar = manifest::sidecar_path(&archive);
    let expected = match &listing {
        Some(listing) => Some((listing_file.clone(), listing.sha256.clone())),
        None if sidecar.is_file() => Some((sidecar.clone(), Sidecar::read(&sidecar)?.checksum)),
        None => None,
    };
    if let Some((recorded_in, checksum)) = &expected {
        if *checksum != sha256 {
            return Err(Error::ArchiveChecksumMismatch {
                archive: archive.clone(),
                sidecar: recorded_in.clone(),
                expected: checksum.clone(),
                actual: sha256,
            });
        }
    }
    fsutil::persist(temp, &destination)?;
    Ok(JoinReport {
        archive: destination,
        size_bytes,
        sha256,
        num_parts: parts.len(),
        checked_against: expected.map(|(path, _)| path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_follow_gnu_split() {
        assert_eq!(part_suffix(0), "aa");
        assert_eq!(part_suffix(1), "ab");
        assert_eq!(part_suffix(25), "az");
        assert_eq!(part_suffix(26), "ba");
        assert_eq!(part_suffix(649), "yz");
        assert_eq!(part_suffix(650), "zaaa");
        assert_eq!(part_suffix(650 + 25 * 26 * 26 - 1), "zyzz");
        assert_eq!(part_suffix(650 + 25 * 26 * 26), "zzaaaa");
        let names: Vec<String> = (0..20_000).map(part_suffix).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "names must sort in part order");
    }

    #[test]
    fn sizes_parse_like_split() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("100k").unwrap(), 100 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert!(parse_size("1X").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn part_names_lead_back_to_the_archive() {
        assert_eq!(
            part_base(Path::new("d/x.tar.gz.part_ab")),
            Some(PathBuf::from("d/x.tar.gz"))
        );
        assert_eq!(
            part_base(Path::new("d/x.tar.gz.parts.json")),
            Some(PathBuf::from("d/x.tar.gz"))
        );
        assert_eq!(part_base(Path::new("d/x.tar.gz")), None);
        assert_eq!(part_base(Path::new("d/x.part_A1")), None);
    }
}
