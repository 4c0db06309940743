//! Inserting a virtual card into a leased reader (in-process thread or the `ukey-vpiv` binary)
//! and removing it, each confirmed by PC/SC within a deadline and timed for the hot-plug
//! benchmark.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::reader::{CARD_TIMEOUT, ReaderLease};
use super::{HarnessError, pcscd};
use crate::card::VirtualPiv;
use crate::faults::FaultPlan;
use crate::vpcd::{CardSlot, Connection, SharedCard};

/// A card in a leased reader, served by a thread of this process. Dropping it removes the card.
pub struct InsertedCard<'a> {
    lease: &'a ReaderLease,
    shared: SharedCard,
    connection: Option<Connection>,
    /// From the vpcd connection to PC/SC reporting the card present.
    pub insert_latency: Duration,
    /// When the card was connected to vpcd (the physical insertion).
    pub connected_at: Instant,
}

impl ReaderLease {
    /// Inserts `card` and waits until PC/SC reports it present.
    pub fn insert(&self, card: VirtualPiv) -> Result<InsertedCard<'_>, HarnessError> {
        self.insert_with_faults(card, FaultPlan::none())
    }

    /// Inserts `card` with a fault plan.
    pub fn insert_with_faults(&self, card: VirtualPiv, faults: FaultPlan) -> Result<InsertedCard<'_>, HarnessError> {
        self.insert_shared(SharedCard::new(card, faults))
    }

    /// Inserts a card the caller keeps a handle on.
    pub fn insert_shared(&self, shared: SharedCard) -> Result<InsertedCard<'_>, HarnessError> {
        // A card left over by a crashed test would make "present" true too early.
        self.wait_for_card(false, CARD_TIMEOUT)?;
        let connection = Connection::open(self.vpcd_addr(), shared.clone())
            .map_err(|source| HarnessError::Vpcd { port: self.reader().port, source })?;
        let connected_at = connection.connected_at;
        let mut inserted = InsertedCard {
            lease: self,
            shared,
            connection: Some(connection),
            insert_latency: Duration::ZERO,
            connected_at,
        };
        self.wait_for_card(true, CARD_TIMEOUT)?;
        inserted.insert_latency = connected_at.elapsed();
        Ok(inserted)
    }

    /// Runs the `ukey-vpiv` binary at `exe` on this reader with extra `args` (state file, PINs,
    /// faults) and waits until PC/SC reports the card present.
    pub fn insert_process(&self, exe: &Path, args: &[&str]) -> Result<CardProcess<'_>, HarnessError> {
        self.wait_for_card(false, CARD_TIMEOUT)?;
        let started = Instant::now();
        let child = Command::new(exe)
            .arg("--port")
            .arg(self.reader().port.to_string())
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| HarnessError::Io(exe.display().to_string(), e))?;
        let mut process = CardProcess { lease: self, child: Some(child), insert_latency: Duration::ZERO };
        self.wait_for_card(true, CARD_TIMEOUT)?;
        process.insert_latency = started.elapsed();
        Ok(process)
    }
}

impl InsertedCard<'_> {
    /// The card, for inspection or changes (retry counters, objects, fault plan, APDU count).
    /// The card answers no APDU while the guard lives: never hold it across a host operation,
    /// and never take it twice in one expression.
    pub fn slot(&self) -> std::sync::MutexGuard<'_, CardSlot> {
        self.shared.lock()
    }

    /// The shared handle (e.g. to re-insert the same card later).
    pub fn shared(&self) -> SharedCard {
        self.shared.clone()
    }

    /// Whether the card's connection has ended by itself (a drop fault fired, or vpcd went away).
    pub fn is_disconnected(&self) -> bool {
        self.connection.as_ref().is_none_or(Connection::is_closed)
    }

    /// Removes the card, waits until PC/SC reports the reader empty, and gives the card back
    /// (to insert it again) with the time removal took to show in PC/SC.
    pub fn remove(mut self) -> Result<(SharedCard, Duration), HarnessError> {
        let took = self.disconnect()?;
        Ok((self.shared.clone(), took))
    }

    fn disconnect(&mut self) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        if let Some(connection) = self.connection.take() {
            connection.close();
        }
        if pcscd::answers() {
            self.lease.wait_for_card(false, CARD_TIMEOUT)?;
        }
        Ok(started.elapsed())
    }
}

impl Drop for InsertedCard<'_> {
    fn drop(&mut self) {
        if self.connection.is_some()
            && let Err(err) = self.disconnect()
        {
            log::warn!("removing the virtual card: {err}");
        }
    }
}

/// A card served by a `ukey-vpiv` process. Dropping it stops the process (SIGTERM, then SIGKILL
/// after a deadline).
pub struct CardProcess<'a> {
    lease: &'a ReaderLease,
    child: Option<Child>,
    /// From starting the process to PC/SC reporting the card present.
    pub insert_latency: Duration,
}

/// How long the card process may take to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

impl CardProcess<'_> {
    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the process with SIGTERM, waits for it to exit and for PC/SC to see the reader
    /// empty; returns the exit status.
    pub fn remove(mut self) -> Result<std::process::ExitStatus, HarnessError> {
        let status = self.terminate()?;
        if pcscd::answers() {
            self.lease.wait_for_card(false, CARD_TIMEOUT)?;
        }
        Ok(status)
    }

    fn terminate(&mut self) -> Result<std::process::ExitStatus, HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Err(HarnessError::Io("card process".into(), std::io::Error::other("already stopped")));
        };
        let io = |e| HarnessError::Io("card process".into(), e);
        if let Some(status) = child.try_wait().map_err(io)? {
            return Ok(status);
        }
        let pid = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().map_err(io)? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return child.wait().map_err(io);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for CardProcess<'_> {
    fn drop(&mut self) {
        if self.child.is_some()
            && let Err(err) = self.terminate()
        {
            log::warn!("stopping the card process: {err}");
        }
    }
}
