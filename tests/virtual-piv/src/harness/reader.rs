//! Leasing one of vpcd's virtual readers, and waiting for PC/SC to see a card come and go.

use std::ffi::CString;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, Scope, State};

use super::locks::{LockFile, lock_dir};
use super::{HarnessError, pcscd};

/// A vpcd reader: the TCP port a virtual card connects to, and the name pcscd gives the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualReader {
    /// vpcd's TCP port.
    pub port: u16,
    /// The PC/SC reader name.
    pub name: &'static str,
}

/// The two readers vsmartcard-vpcd's default configuration creates.
pub const VPCD_READERS: [VirtualReader; 2] = [
    VirtualReader { port: 35963, name: "Virtual PCD 00 00" },
    VirtualReader { port: 35964, name: "Virtual PCD 00 01" },
];

/// How long a card may take to appear in or vanish from PC/SC (pcscd polls vpcd readers; it
/// notices an insertion within about half a second).
pub const CARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Exclusive use of one vpcd reader by this test, plus shared (or exclusive) use of pcscd.
/// Dropping it releases both.
#[derive(Debug)]
pub struct ReaderLease {
    reader: VirtualReader,
    _port_lock: LockFile,
    pcscd_lock: LockFile,
    pcscd_exclusive: bool,
}

impl ReaderLease {
    /// Leases whichever vpcd reader is free first, waiting at most `timeout`; starts pcscd if it
    /// is not running.
    pub fn acquire_any(timeout: Duration) -> Result<Self, HarnessError> {
        Self::acquire(&VPCD_READERS, false, timeout)
    }

    /// Leases a particular reader.
    pub fn acquire_reader(reader: VirtualReader, timeout: Duration) -> Result<Self, HarnessError> {
        Self::acquire(&[reader], false, timeout)
    }

    /// Leases a reader and pcscd exclusively: for tests that stop or restart pcscd. Waits until
    /// every other test using pcscd through the harness has released it.
    pub fn acquire_any_exclusive(timeout: Duration) -> Result<Self, HarnessError> {
        Self::acquire(&VPCD_READERS, true, timeout)
    }

    fn acquire(candidates: &[VirtualReader], exclusive: bool, timeout: Duration) -> Result<Self, HarnessError> {
        let deadline = Instant::now() + timeout;
        let dir = lock_dir();
        // Lock order everywhere: pcscd first, then a reader, so no two tests wait on each other.
        let pcscd_lock = LockFile::acquire(&dir.join("pcscd.lock"), exclusive, timeout)?;
        pcscd::ensure_running()?;
        loop {
            for reader in candidates {
                let path = dir.join(format!("vpcd-{}.lock", reader.port));
                if let Some(lock) = LockFile::try_acquire(&path, true)? {
                    let lease =
                        ReaderLease { reader: *reader, _port_lock: lock, pcscd_lock, pcscd_exclusive: exclusive };
                    lease.check_reader_known()?;
                    return Ok(lease);
                }
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::LockTimeout { path: dir.join("vpcd-*.lock").display().to_string(), timeout });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The leased reader.
    pub fn reader(&self) -> VirtualReader {
        self.reader
    }

    /// The PC/SC name of the leased reader.
    pub fn reader_name(&self) -> &'static str {
        self.reader.name
    }

    /// The vpcd address a card connects to for this reader.
    pub fn vpcd_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.reader.port))
    }

    /// Waits until PC/SC reports a card present (`true`) or absent (`false`) in this reader;
    /// returns how long that took.
    pub fn wait_for_card(&self, present: bool, timeout: Duration) -> Result<Duration, HarnessError> {
        wait_for_card(self.reader.name, present, timeout)
    }

    /// Stops pcscd (only one the harness started). Needs an exclusive lease.
    pub fn stop_pcscd(&self) -> Result<(), HarnessError> {
        if !self.pcscd_exclusive {
            return Err(HarnessError::NotExclusive);
        }
        pcscd::stop()
    }

    /// Kills pcscd with SIGKILL (a crash: no cleanup, clients cut off mid-call). Needs an
    /// exclusive lease; [`ReaderLease::start_pcscd`] brings it back.
    pub fn kill_pcscd(&self) -> Result<(), HarnessError> {
        if !self.pcscd_exclusive {
            return Err(HarnessError::NotExclusive);
        }
        pcscd::kill()
    }

    /// Starts pcscd again after [`ReaderLease::stop_pcscd`], waiting until it answers.
    pub fn start_pcscd(&self) -> Result<(), HarnessError> {
        if !self.pcscd_exclusive {
            return Err(HarnessError::NotExclusive);
        }
        pcscd::ensure_running()
    }

    /// The pcscd lock file held by this lease.
    pub fn pcscd_lock(&self) -> &LockFile {
        &self.pcscd_lock
    }

    fn check_reader_known(&self) -> Result<(), HarnessError> {
        let ctx = Context::establish(Scope::User)?;
        let readers = ctx.list_readers_owned()?;
        if readers.iter().any(|r| r.to_bytes() == self.reader.name.as_bytes()) {
            Ok(())
        } else {
            Err(HarnessError::ReaderMissing(self.reader.name.to_string()))
        }
    }
}

/// Waits until PC/SC reports a card present (`true`) or absent (`false`) in `reader`, using
/// `SCardGetStatusChange` (no polling); returns the time waited.
pub fn wait_for_card(reader: &str, present: bool, timeout: Duration) -> Result<Duration, HarnessError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let ctx = Context::establish(Scope::User)?;
    let name = CString::new(reader).map_err(|_| HarnessError::ReaderMissing(reader.to_string()))?;
    let mut states = [ReaderState::new(name, State::UNAWARE)];
    let timed_out = || HarnessError::CardTimeout {
        reader: reader.to_string(),
        expected: if present { "present" } else { "absent" },
        timeout,
    };
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match ctx.get_status_change(remaining, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => return Err(timed_out()),
            Err(e) => return Err(e.into()),
        }
        let event = states[0].event_state();
        if event.contains(State::UNKNOWN) {
            return Err(HarnessError::ReaderMissing(reader.to_string()));
        }
        let is_present = event.contains(State::PRESENT) && !event.contains(State::MUTE);
        if is_present == present {
            return Ok(started.elapsed());
        }
        if remaining.is_zero() {
            return Err(timed_out());
        }
        states[0].sync_current_state();
    }
}
