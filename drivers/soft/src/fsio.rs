//! Crash-safe file writes and bounded reads.
//!
//! A write goes to a temporary file in the same directory, is flushed to disk, renamed over the
//! old file (atomic on POSIX file systems) and then the directory itself is flushed, so after a
//! crash or `kill -9` at any instant the file holds either the complete old or the complete new
//! content — never a mix, never nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use ukey_api::{Error, Result};

/// Replaces `path` with `bytes` atomically and durably. Caller holds the token's lock, so the
/// temporary name cannot collide with another writer.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(format!("could not write {}", path.display()), e)
    })
}

/// Removes a file and flushes its directory, so the removal survives a crash.
pub fn remove_durably(path: &Path) -> Result<()> {
    fs::remove_file(path).map_err(|e| io_error(path, "delete", e))?;
    let dir = parent_dir(path)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, "flush", e))
}

/// Reads a whole file, refusing files larger than `limit` bytes. A missing file is reported as
/// `Ok(None)` so callers can say which object went away.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, "read", e)),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| io_error(path, "read", e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::Corrupt { path: path.to_path_buf(), reason: format!("larger than {limit} bytes") });
    }
    Ok(Some(bytes))
}

/// Creates a private directory (0700) and its parents if missing.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| io_error(dir, "create the directory", e))
}

/// Maps an I/O error to the contract's error, naming the path and turning "permission denied"
/// into the variant a person can act on.
pub fn io_error(path: &Path, doing: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        return Error::PermissionDenied(format!("cannot {doing} {}: {e}", path.display()));
    }
    Error::io(format!("cannot {doing} {}", path.display()), e)
}

fn parent_dir(path: &Path) -> Result<&Path> {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| Error::InvalidInput(format!("{} has no parent directory", path.display())))
}
