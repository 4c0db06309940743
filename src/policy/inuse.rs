//! "Not usable by another account at the same time": a cross-account in-use marker per carrier.
//!
//! In a shared sticky directory (`/run/ukey/in-use`, mode 1777, made by the installation's
//! tmpfiles rule) each carrier has
//! - `<key>.lock`: a short mutex any account can `flock` (read-only), held only while checking;
//! - `<key>.<uid>`: one marker per account, created by that account; a use holds a shared
//!   `flock` on its own account's marker for as long as it runs (the holder's agent and CLI may
//!   use the carrier at once).
//!
//! To start a use, an account takes the mutex, tries an exclusive non-blocking lock on every
//! OTHER account's marker (it fails exactly when some process of that account holds the carrier
//! now), and refuses naming that account; otherwise it takes its own shared lock and releases
//! the mutex. Locks die with their process, so a killed agent never leaves the carrier "in use".
//!
//! Only accounts the carrier's record allows count as holders (the caller passes that test in):
//! a local user who is not allowed to use a carrier cannot block its holder by holding a marker.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};

use crate::policy::accounts::{Account, login_of};

/// How long to wait for another account's check to finish.
const MUTEX_WAIT: Duration = Duration::from_secs(2);

/// Why a carrier could not be marked in use.
#[derive(Debug, thiserror::Error)]
pub enum InUseError {
    /// Another account uses it now.
    #[error(
        "this key is in use by account {login} right now; it cannot be used by two accounts at the same time — try again when they are done"
    )]
    HeldBy {
        /// The other account's uid.
        uid: u32,
        /// Its login (or `uid N`).
        login: String,
    },
    /// The marker directory is missing or unusable.
    #[error("the in-use marker {} cannot be used ({reason}); ask the administrator to create {} with mode 1777 (ukey's tmpfiles rule does)", path.display(), dir.display())]
    Unusable {
        /// The file or directory.
        path: PathBuf,
        /// The directory.
        dir: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A use in progress; dropping it ends the use.
#[derive(Debug)]
pub struct Hold {
    _marker: File,
}

/// The marker directory.
#[derive(Debug, Clone)]
pub struct InUse {
    dir: PathBuf,
}

impl InUse {
    /// Markers in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        InUse { dir: dir.into() }
    }

    /// Marks the carrier `serial` in use by `account`, unless another account that `counts`
    /// holds it.
    pub fn acquire(&self, serial: &str, account: &Account, counts: impl Fn(u32) -> bool) -> Result<Hold, InUseError> {
        self.ensure_dir()?;
        let key = marker_key(serial);
        let mutex_path = self.dir.join(format!("{key}.lock"));
        let mutex = open_shared(&mutex_path).map_err(|e| self.unusable(&mutex_path, e))?;
        lock_with_deadline(&mutex).map_err(|reason| InUseError::Unusable {
            path: mutex_path.clone(),
            dir: self.dir.clone(),
            reason,
        })?;
        let result = self.check_and_take(&key, account, &counts);
        let _ = flock(&mutex, FlockOperation::Unlock);
        result
    }

    fn check_and_take(&self, key: &str, account: &Account, counts: &dyn Fn(u32) -> bool) -> Result<Hold, InUseError> {
        let prefix = format!("{key}.");
        let entries = fs::read_dir(&self.dir).map_err(|e| self.unusable(&self.dir, e))?;
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(uid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|u| u.parse::<u32>().ok())
            else {
                continue;
            };
            if uid == account.uid || !counts(uid) {
                continue;
            }
            let Ok(other) = OpenOptions::new().read(true).custom_flags(nofollow()).open(entry.path()) else { continue };
            match flock(&other, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    let _ = flock(&other, FlockOperation::Unlock);
                }
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    let login = login_of(uid).unwrap_or_else(|| marker_login(&other).unwrap_or(format!("uid {uid}")));
                    return Err(InUseError::HeldBy { uid, login });
                }
                Err(_) => {}
            }
        }
        let own = self.dir.join(format!("{key}.{}", account.uid));
        let marker = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(nofollow())
            .open(&own)
            .map_err(|e| self.unusable(&own, e))?;
        let meta = marker.metadata().map_err(|e| self.unusable(&own, e))?;
        if meta.uid() != account.uid && rustix::process::geteuid().as_raw() == account.uid {
            return Err(InUseError::Unusable {
                path: own,
                dir: self.dir.clone(),
                reason: format!("it belongs to uid {}, not to this account: someone planted it", meta.uid()),
            });
        }
        flock(&marker, FlockOperation::LockShared).map_err(|e| self.unusable(&own, e.into()))?;
        if meta.len() == 0 {
            let mut m = &marker;
            let _ = m.write_all(format!("{}\n", account.label()).as_bytes());
        }
        Ok(Hold { _marker: marker })
    }

    fn ensure_dir(&self) -> Result<(), InUseError> {
        match fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(InUseError::Unusable {
                path: self.dir.clone(),
                dir: self.dir.clone(),
                reason: "it is not a directory".into(),
            }),
            Err(_) => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o1777)
                    .create(&self.dir)
                    .map_err(|e| self.unusable(&self.dir, e))?;
                // The umask trims the mode; the sticky, world-writable directory is the point.
                let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o1777));
                Ok(())
            }
        }
    }

    fn unusable(&self, path: &Path, e: std::io::Error) -> InUseError {
        InUseError::Unusable { path: path.to_path_buf(), dir: self.dir.clone(), reason: e.to_string() }
    }
}

/// Opens a file every account may lock: read-only when it exists (it may belong to another
/// account), created world-readable otherwise.
fn open_shared(path: &Path) -> std::io::Result<File> {
    match OpenOptions::new().read(true).custom_flags(nofollow()).open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(nofollow())
                .open(path)
            {
                Ok(f) => Ok(f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    OpenOptions::new().read(true).custom_flags(nofollow()).open(path)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

fn lock_with_deadline(file: &File) -> Result<(), String> {
    let deadline = Instant::now() + MUTEX_WAIT;
    loop {
        match flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                if Instant::now() >= deadline {
                    return Err(format!("another account's check has held it for {} s", MUTEX_WAIT.as_secs()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The login an account wrote into its marker (for uids NSS no longer knows).
fn marker_login(file: &File) -> Option<String> {
    let mut text = String::new();
    let f = file;
    f.take(256).read_to_string(&mut text).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.chars().filter(|c| !c.is_control()).collect())
}

/// A file-name-safe key for a serial: its SM3, so any serial maps to a fixed-size plain name.
pub fn marker_key(serial: &str) -> String {
    let h = crate::audit::record::body_hash(serial.as_bytes());
    h.get(..32).unwrap_or(&h).to_string()
}

fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_account_shares_and_a_released_hold_frees_the_carrier() {
        let dir = tempfile::tempdir().unwrap();
        let markers = InUse::new(dir.path().join("in-use"));
        let me = Account::current();
        let a = markers.acquire("0001", &me, |_| true).unwrap();
        let b = markers.acquire("0001", &me, |_| true).unwrap();
        drop((a, b));
        // Another "account" (a different uid in the marker name) holding the carrier is seen.
        let other = Account { uid: me.uid + 1, login: Some("other".into()) };
        let held = markers.acquire("0002", &other, |_| true).unwrap();
        match markers.acquire("0002", &me, |_| true) {
            Err(InUseError::HeldBy { uid, .. }) => assert_eq!(uid, me.uid + 1),
            other => panic!("expected HeldBy, got {other:?}"),
        }
        assert!(
            markers.acquire("0002", &me, |uid| uid != me.uid + 1).is_ok(),
            "an account that may not use it does not count"
        );
        drop(held);
        assert!(markers.acquire("0002", &me, |_| true).is_ok());
    }
}
