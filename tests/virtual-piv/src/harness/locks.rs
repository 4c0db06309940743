//! Cross-process advisory locks (`flock`) on well-known files, so test binaries that cargo runs
//! in parallel coordinate their use of the shared vpcd readers and of pcscd itself.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs4::FileExt;

use super::HarnessError;

/// How often a blocked lock is retried while waiting for its deadline.
const RETRY_EVERY: Duration = Duration::from_millis(20);

/// The directory of the lock files: `$UKEY_TEST_LOCK_DIR`, or `ukey-test-locks` in the system
/// temporary directory. World-writable with the sticky bit, so different users can share it.
pub fn lock_dir() -> PathBuf {
    let dir = std::env::var_os("UKEY_TEST_LOCK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ukey-test-locks"));
    if fs::create_dir_all(&dir).is_ok() {
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777));
    }
    dir
}

/// A held lock; released when dropped (closing the file releases the `flock`).
#[derive(Debug)]
pub struct LockFile {
    _file: File,
    path: PathBuf,
}

impl LockFile {
    /// Takes the lock on `path`, shared or exclusive, waiting at most `timeout`.
    pub fn acquire(path: &Path, exclusive: bool, timeout: Duration) -> Result<Self, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(lock) = Self::try_acquire(path, exclusive)? {
                return Ok(lock);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::LockTimeout { path: path.display().to_string(), timeout });
            }
            std::thread::sleep(RETRY_EVERY);
        }
    }

    /// Takes the lock if it is free right now.
    pub fn try_acquire(path: &Path, exclusive: bool) -> Result<Option<Self>, HarnessError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| HarnessError::Io(path.display().to_string(), e))?;
        let _ = file.set_permissions(fs::Permissions::from_mode(0o666));
        let attempt = if exclusive { FileExt::try_lock(&file) } else { FileExt::try_lock_shared(&file) };
        match attempt {
            Ok(()) => Ok(Some(LockFile { _file: file, path: path.to_path_buf() })),
            Err(fs4::TryLockError::WouldBlock) => Ok(None),
            Err(fs4::TryLockError::Error(e)) => Err(HarnessError::Io(path.display().to_string(), e)),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
