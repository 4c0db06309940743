//! Cross-process locks on soft tokens (`flock(2)` on a lock file beside the token file).
//!
//! The lock is taken on a separate `<serial>.lock` file, not on the token file, because every
//! write replaces the token file by rename: a lock on the old inode would not stop a process that
//! opened the new one. Locks are released by the kernel when the holder exits, even by `kill -9`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};
use ukey_api::{Error, Result};

use crate::fsio::io_error;

/// How long an operation waits for another process to finish with the token before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// A held lock; released when dropped (closing the file releases the `flock`).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Takes the exclusive lock on `path` (created if missing), waiting up to a minute for other
    /// processes.
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_error(path, "open the lock file", e))?;
        let op = FlockOperation::NonBlockingLockExclusive;
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match flock(&file, op) {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                    if Instant::now() >= deadline {
                        return Err(Error::Busy(format!(
                            "another process has held {} for over {} s",
                            path.display(),
                            LOCK_WAIT.as_secs()
                        )));
                    }
                    // Back off between polls; the holder usually finishes within one KDF run.
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(io_error(path, "lock", e.into())),
            }
        }
    }
}
