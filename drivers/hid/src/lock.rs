//! Exclusive use of a HID device for one operation: a process-wide lock by device path (threads
//! of one ukey process), plus an advisory `flock` on the hidraw node (other ukey processes, and
//! any other program that honours it). Both waits are bounded.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};
use ukey_api::{Error, Result};

/// Devices held by a thread of this process, by path.
static HELD: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
/// Signalled whenever a device is released.
static RELEASED: Condvar = Condvar::new();
/// How often a held `flock` is retried while waiting.
const FLOCK_RETRY: Duration = Duration::from_millis(10);

fn held() -> MutexGuard<'static, BTreeSet<String>> {
    // The set stays consistent even if a holder panicked: its guard's drop still ran.
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Exclusive use of one device; released when dropped.
#[derive(Debug)]
pub struct DeviceGuard {
    key: String,
    _flock: Option<File>,
}

impl Drop for DeviceGuard {
    fn drop(&mut self) {
        held().remove(&self.key);
        RELEASED.notify_all();
        // Closing the file releases the flock.
    }
}

/// Takes exclusive use of the device `key` (its path), and an exclusive `flock` on
/// `flock_path` when given, waiting at most `timeout` for each holder to finish.
pub fn acquire(key: &str, flock_path: Option<&Path>, timeout: Duration) -> Result<DeviceGuard> {
    let deadline = Instant::now() + timeout;
    let mut set = held();
    while set.contains(key) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Busy(format!("another operation of this program is using the HID device {key}")));
        }
        set = RELEASED.wait_timeout(set, left).unwrap_or_else(PoisonError::into_inner).0;
    }
    set.insert(key.to_string());
    drop(set);
    // From here the key is ours: the guard releases it on every path out, errors included.
    let mut guard = DeviceGuard { key: key.to_string(), _flock: None };
    if let Some(path) = flock_path {
        guard._flock = Some(lock_file(path, deadline)?);
    }
    Ok(guard)
}

fn lock_file(path: &Path, deadline: Instant) -> Result<File> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::TokenRemoved,
        std::io::ErrorKind::PermissionDenied => Error::PermissionDenied(format!(
            "{}: cannot open the HID device to lock it; install ukey's udev rules (`ukey doctor` explains)",
            path.display()
        )),
        _ => Error::io(format!("opening {} to lock it", path.display()), e),
    })?;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io(format!("locking {}", path.display()), e.into())),
        }
        if Instant::now() >= deadline {
            return Err(Error::Busy(format!("another program is using the HID device {}", path.display())));
        }
        std::thread::sleep(FLOCK_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_and_times_out_with_busy() {
        let key = "test-lock-busy";
        let first = acquire(key, None, Duration::from_secs(1)).unwrap();
        let err = acquire(key, None, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::Busy(_)), "{err:?}");
        drop(first);
        acquire(key, None, Duration::from_millis(50)).expect("free after release");
    }

    #[test]
    fn a_waiting_thread_gets_the_device_when_it_is_released() {
        let key = "test-lock-handover";
        let first = acquire(key, None, Duration::from_secs(1)).unwrap();
        let waiter = std::thread::spawn(move || acquire(key, None, Duration::from_secs(30)).map(|_| ()));
        drop(first);
        waiter.join().unwrap().expect("handed over");
    }

    #[test]
    fn flock_excludes_a_second_open_file_even_in_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("hidraw-test");
        std::fs::write(&node, b"").unwrap();
        // Different keys: only the flock can stop the second one (as in another process).
        let first = acquire("test-flock-a", Some(&node), Duration::from_secs(1)).unwrap();
        let err = acquire("test-flock-b", Some(&node), Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::Busy(m) if m.contains("another program")));
        drop(first);
        acquire("test-flock-b", Some(&node), Duration::from_millis(50)).expect("free after release");
        // A node that is gone means the device is gone.
        let gone = dir.path().join("missing");
        assert!(matches!(acquire("test-flock-c", Some(&gone), Duration::from_millis(50)), Err(Error::TokenRemoved)));
    }
}
