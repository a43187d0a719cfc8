//! Writing files so that a crash never leaves a half-written file under its final name.

use std::fs;
use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::{Error, IoContext, Result};

/// Prefix of every temporary file and folder this tool creates beside its outputs, so that
/// leftovers of a killed run are recognisable and cleaned by the next run. The full prefix also
/// names the process: `.xtask-tmp-<pid>-`.
pub const TEMP_PREFIX: &str = ".xtask-tmp-";

/// `.xtask-tmp-<pid>-` for this process.
pub fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-", std::process::id())
}

/// A new temporary file in `dir` (created if missing), named after `final_name`; it is deleted
/// when dropped unless persisted.
pub fn temp_file_for(dir: &Path, final_name: &str) -> Result<NamedTempFile> {
    fs::create_dir_all(dir).at("creating", dir)?;
    tempfile::Builder::new()
        .prefix(&format!("{}{final_name}.", temp_prefix()))
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

/// Removes temporary files and folders that a killed run left in `dir`: those whose process no
/// longer runs (where the OS can tell, as on Linux), and any older than a day. Errors are ignored:
/// this is tidying only.
pub fn clean_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let day = std::time::Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
            continue;
        };
        let owner_gone = rest
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
            .is_some_and(|pid| pid != std::process::id() && process_is_gone(pid));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > day);
        if owner_gone || old {
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

/// Whether process `pid` is known not to run. Only Linux can tell cheaply (`/proc`); elsewhere
/// nothing is known, and only age decides.
fn process_is_gone(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    proc_root.join("self").exists() && !proc_root.join(pid.to_string()).exists()
}
