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
//!
//! A use that ends tidies up after itself, so the directory holds only carriers in use (or
//! whose process was killed): under the mutex, an account removes its own marker when no other
//! process of it still holds that marker, and the last one out removes the mutex file too. Every
//! check scans the directory, so leftovers would make each use slower. Because a mutex file may be
//! removed, whoever locks it checks afterwards that the name still leads to the file it locked.

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

/// A use in progress; dropping it ends the use and removes the account's marker when no other
/// process of the account still holds it.
#[derive(Debug)]
pub struct Hold {
    marker: File,
    markers: InUse,
    key: String,
    uid: u32,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = flock(&self.marker, FlockOperation::Unlock);
        self.markers.tidy(&self.key, self.uid, &self.marker);
    }
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
        let mutex = self.lock_mutex(&key)?;
        let result = self.check_and_take(&key, account, &counts);
        let _ = flock(&mutex, FlockOperation::Unlock);
        result
    }

    /// Takes the carrier's mutex: locks the file its name leads to, and tries again when the
    /// last user removed that file meanwhile (a lock on a removed file excludes nobody).
    fn lock_mutex(&self, key: &str) -> Result<File, InUseError> {
        let path = self.dir.join(format!("{key}.lock"));
        let deadline = Instant::now() + MUTEX_WAIT;
        loop {
            let mutex = open_shared(&path).map_err(|e| self.unusable(&path, e))?;
            lock_with_deadline(&mutex, deadline).map_err(|reason| InUseError::Unusable {
                path: path.clone(),
                dir: self.dir.clone(),
                reason,
            })?;
            if still_named(&mutex, &path) {
                return Ok(mutex);
            }
        }
    }

    /// After a use: removes the account's marker unless another process of the account still
    /// holds it, and the mutex file once no marker of the carrier is left. Best effort: what it
    /// cannot remove stays, and the next use works as before.
    fn tidy(&self, key: &str, uid: u32, marker: &File) {
        let Ok(mutex) = self.lock_mutex(key) else { return };
        let own = self.dir.join(format!("{key}.{uid}"));
        // Under the mutex nobody is between opening a marker and locking it, so an exclusive
        // lock succeeds exactly when no process of this account holds the carrier.
        if flock(marker, FlockOperation::NonBlockingLockExclusive).is_ok()
            && still_named(marker, &own)
            && fs::remove_file(&own).is_ok()
            && !self.has_markers(key)
            && owned_by_me(&mutex)
        {
            let _ = fs::remove_file(self.dir.join(format!("{key}.lock")));
        }
        let _ = flock(marker, FlockOperation::Unlock);
        let _ = flock(&mutex, FlockOperation::Unlock);
    }

    /// Whether any account still has a marker for the carrier.
    fn has_markers(&self, key: &str) -> bool {
        let prefix = format!("{key}.");
        let Ok(entries) = fs::read_dir(&self.dir) else { return true };
        entries.filter_map(Result::ok).any(|entry| {
            entry.file_name().to_str().and_then(|n| n.strip_prefix(&prefix)).is_some_and(|rest| rest != "lock")
        })
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
        Ok(Hold { marker, markers: self.clone(), key: key.to_string(), uid: account.uid })
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

fn lock_with_deadline(file: &File, deadline: Instant) -> Result<(), String> {
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

/// Whether `path` still names the open `file` (it was not removed or replaced since it was opened).
fn still_named(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Whether this process's account owns the file: in the sticky directory only the owner may
/// remove it.
fn owned_by_me(file: &File) -> bool {
    file.metadata().is_ok_and(|m| m.uid() == rustix::process::geteuid().as_raw())
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

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_finished_use_leaves_no_marker_behind() {
        let dir = tempfile::tempdir().unwrap();
        let markers = InUse::new(dir.path().join("in-use"));
        let me = Account::current();
        let key = marker_key("0003");
        let first = markers.acquire("0003", &me, |_| true).unwrap();
        let second = markers.acquire("0003", &me, |_| true).unwrap();
        drop(first);
        assert_eq!(
            names(&markers.dir),
            [format!("{key}.{}", me.uid), format!("{key}.lock")],
            "a marker another use of the account still holds stays"
        );
        drop(second);
        assert!(
            names(&markers.dir).is_empty(),
            "the last use removes the marker and the mutex: {:?}",
            names(&markers.dir)
        );

        // Another account's marker keeps the mutex; ours still goes.
        let other = Account { uid: me.uid + 1, login: Some("other".into()) };
        let theirs = markers.acquire("0003", &other, |_| true).unwrap();
        drop(theirs);
        let ours = markers.acquire("0003", &me, |_| true).unwrap();
        drop(ours);
        assert!(names(&markers.dir).is_empty());
        let theirs = markers.acquire("0003", &other, |_| true).unwrap();
        assert!(matches!(markers.acquire("0003", &me, |_| true), Err(InUseError::HeldBy { .. })));
        drop(theirs);
        let ours = markers.acquire("0003", &me, |_| true).unwrap();
        drop(ours);
        assert!(names(&markers.dir).is_empty());
    }

    #[test]
    fn a_mutex_removed_while_waiting_for_it_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let markers = InUse::new(dir.path().join("in-use"));
        markers.ensure_dir().unwrap();
        let key = marker_key("0005");
        let path = markers.dir.join(format!("{key}.lock"));
        let last_user = open_shared(&path).unwrap();
        flock(&last_user, FlockOperation::LockExclusive).unwrap();
        let opened_by_us = || {
            fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                .filter(|target| *target == path)
                .count()
        };
        std::thread::scope(|s| {
            let waiter = s.spawn(|| markers.lock_mutex(&key).unwrap());
            // Wait until the waiter has the old file open, then do what the last user's tidy
            // does: remove the file while holding its lock, then unlock.
            let deadline = Instant::now() + Duration::from_secs(10);
            while opened_by_us() < 2 {
                assert!(Instant::now() < deadline, "the waiter never opened the mutex");
                std::thread::yield_now();
            }
            fs::remove_file(&path).unwrap();
            flock(&last_user, FlockOperation::Unlock).unwrap();
            let taken = waiter.join().unwrap();
            assert!(still_named(&taken, &path), "the waiter holds a removed mutex that excludes nobody");
        });
    }

    #[test]
    fn two_accounts_never_hold_a_carrier_at_once_while_markers_come_and_go() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let markers = InUse::new(dir.path().join("in-use"));
        let me = Account::current();
        let accounts = [me.clone(), Account { uid: me.uid + 1, login: Some("other".into()) }];
        let holding = [AtomicU32::new(0), AtomicU32::new(0)];
        std::thread::scope(|s| {
            for worker in 0..4 {
                let (markers, accounts, holding) = (&markers, &accounts, &holding);
                s.spawn(move || {
                    let (mine, theirs) = (worker % 2, 1 - worker % 2);
                    let mut uses = 0;
                    while uses < 150 {
                        match markers.acquire("0004", &accounts[mine], |_| true) {
                            Ok(hold) => {
                                holding[mine].fetch_add(1, Ordering::SeqCst);
                                for _ in 0..20 {
                                    assert_eq!(holding[theirs].load(Ordering::SeqCst), 0, "both accounts hold it");
                                    std::thread::yield_now();
                                }
                                holding[mine].fetch_sub(1, Ordering::SeqCst);
                                drop(hold);
                                uses += 1;
                            }
                            Err(InUseError::HeldBy { .. }) => std::thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
            }
        });
        assert!(names(&markers.dir).is_empty(), "{:?}", names(&markers.dir));
    }
}
