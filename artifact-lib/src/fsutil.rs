//! Writing files so that a crash never leaves a half-written file under its final name.

use std::fs;
use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::{Error, IoContext, Result};

/// Prefix of every temporary file and folder this tool creates beside its outputs, so that
/// leftovers of a killed run are recognisable and cleaned by the next run.
pub const TEMP_PREFIX: &str = ".xtask-tmp-";

/// A new temporary file in `dir` (created if missing), named after `final_name`; it is deleted
/// when dropped unless persisted.
pub fn temp_file_for(dir: &Path, final_name: &str) -> Result<NamedTempFile> {
    fs::create_dir_all(dir).at("creating", dir)?;
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{final_name}."))
        .tempfile_in(dir)
        .at("creating a temporary file in", dir)
}

/// Flushes `temp` to disk and renames it to `destination`, replacing any file there.
pub fn persist(temp: NamedTempFile, destination: &Path) -> Result<()> {
    // Temporary files are created private (0600); outputs are ordinary files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let public = std::fs::Permissions::from_mode(0o644);
        temp.as_file()
            .set_permissions(public)
            .at("setting permissions of", temp.path())?;
    }
    temp.as_file().sync_all().at("syncing", temp.path())?;
    temp.persist(destination)
        .map_err(|err| Error::io("renaming into place", destination, err.error))?;
    Ok(())
}

/// Writes `bytes` to `destination` through a temporary file and a rename.
pub fn write_atomically(destination: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(destination);
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = temp_file_for(dir, &name)?;
    temp.write_all(bytes).at("writing", temp.path())?;
    persist(temp, destination)
}

/// The folder holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Removes temporary files and folders that a killed run left in `dir` more than an hour ago.
/// Younger ones may belong to a run still going on. Errors are ignored: this is tidying only.
pub fn clean_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let hour = std::time::Duration::from_secs(3600);
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > hour);
        if old {
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}
