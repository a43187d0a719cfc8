//! Where archive bytes come from: one `.tar.gz` file, or the parts of a split archive read in
//! order as one stream (no joined copy on disk).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::manifest::{self, Sidecar};
use crate::split;

/// An archive to read, whole or in parts.
#[derive(Debug, Clone)]
pub struct ArchiveSource {
    archive: PathBuf,
    parts: Vec<PathBuf>,
}

impl ArchiveSource {
    /// `path` is an archive, or any part of a split archive (`X.tar.gz.part_aa`, ...), or the
    /// name of a split archive whose parts lie beside it.
    pub fn open(path: &Path) -> Result<ArchiveSource> {
        if path.is_file() && split::part_base(path).is_none() {
            return Ok(ArchiveSource {
                archive: path.to_path_buf(),
                parts: vec![path.to_path_buf()],
            });
        }
        let archive = split::part_base(path).unwrap_or_else(|| path.to_path_buf());
        let parts = split::find_parts(&archive)?;
        if parts.is_empty() {
            return Err(Error::io(
                "opening",
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such archive or parts"),
            ));
        }
        split::check_parts_listing(&archive, &parts)?;
        Ok(ArchiveSource { archive, parts })
    }

    /// The archive's path (for a split archive, the name the joined file would have).
    pub fn display_path(&self) -> &Path {
        &self.archive
    }

    /// Whether this archive is read from parts.
    pub fn is_split(&self) -> bool {
        self.parts.len() > 1 || self.parts.first() != Some(&self.archive)
    }

    /// Total bytes to read.
    pub fn total_size(&self) -> u64 {
        self.parts
            .iter()
            .filter_map(|p| p.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// A reader over the whole archive, parts in order.
    pub fn reader(&self) -> Result<Box<dyn Read + Send>> {
        let mut readers: Vec<File> = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            readers.push(File::open(part).at("opening", part)?);
        }
        let chained = readers
            .into_iter()
            .map(|f| Box::new(f) as Box<dyn Read + Send>)
            .reduce(|a, b| Box::new(a.chain(b)))
            .expect("at least one part");
        Ok(chained)
    }

    /// The archive's expected SHA-256 and the file that records it: the sidecar beside the
    /// archive, else the parts listing of a split archive, else `None`.
    pub fn expected_checksum(&self) -> Result<Option<(PathBuf, String)>> {
        let sidecar = manifest::sidecar_path(&self.archive);
        if sidecar.is_file() {
            return Ok(Some((sidecar.clone(), Sidecar::read(&sidecar)?.checksum)));
        }
        let listing = split::listing_path(&self.archive);
        if self.is_split() && listing.is_file() {
            return Ok(Some((
                listing.clone(),
                split::PartsListing::read(&listing)?.sha256,
            )));
        }
        Ok(None)
    }

    /// For a split archive with a parts listing: an error naming every part whose SHA-256
    /// differs from the listing. `None` when there is no listing or every part matches.
    pub fn damaged_parts(&self) -> Option<Error> {
        if !self.is_split() {
            return None;
        }
        let listing = split::PartsListing::read(&split::listing_path(&self.archive)).ok()?;
        split::check_part_contents(&self.archive, &listing, &self.parts).err()
    }
}
