//! The card in vsmartcard's virtual reader: implements `vpicc::VSmartCard` and runs the vpcd
//! protocol over TCP. Connecting inserts the card into the reader; closing the connection
//! removes it.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ATR;
use crate::card::VirtualPiv;
use crate::faults::{FaultAction, FaultPlan};

/// The card as shared between the vpcd thread and the test that inserted it.
pub struct CardSlot {
    /// The card itself.
    pub card: VirtualPiv,
    /// The fault plan; tests may change it while the card is inserted.
    pub faults: FaultPlan,
    /// Command APDUs received since insertion (vpcd control messages not counted).
    pub apdu_count: u64,
    /// INS byte of every command APDU since insertion, in order (APDU economy benchmarks).
    pub ins_log: Vec<u8>,
    /// The APDU number at which a [`crate::faults::FaultMode::Hang`] fault stopped the card.
    pub hung_at: Option<u64>,
}

/// A handle on a card that may be inserted in a reader.
#[derive(Clone)]
pub struct SharedCard(Arc<Shared>);

struct Shared {
    slot: Mutex<CardSlot>,
    /// Notified after every APDU and when a hang fault fires.
    changed: Condvar,
}

impl SharedCard {
    /// Wraps a card with a fault plan.
    pub fn new(card: VirtualPiv, faults: FaultPlan) -> Self {
        SharedCard(Arc::new(Shared {
            slot: Mutex::new(CardSlot { card, faults, apdu_count: 0, ins_log: Vec::new(), hung_at: None }),
            changed: Condvar::new(),
        }))
    }

    /// Locks the card for inspection or changes; a panic elsewhere never makes it unusable.
    pub fn lock(&self) -> MutexGuard<'_, CardSlot> {
        self.0.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until `ready` holds for the card (checked after every APDU it answers and when a
    /// hang fault fires), at most `timeout`; false when the deadline passed first.
    pub fn wait_until(&self, timeout: Duration, ready: impl Fn(&CardSlot) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut slot = self.lock();
        loop {
            if ready(&slot) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            slot = match self.0.changed.wait_timeout(slot, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn notify(&self) {
        self.0.changed.notify_all();
    }

    /// Takes the card back once no connection uses it any more.
    pub fn into_card(self) -> Result<VirtualPiv, SharedCard> {
        match Arc::try_unwrap(self.0) {
            Ok(shared) => Ok(shared.slot.into_inner().unwrap_or_else(|p| p.into_inner()).card),
            Err(arc) => Err(SharedCard(arc)),
        }
    }
}

/// The `vpicc::VSmartCard` face of a card on one connection.
struct Adapter {
    shared: SharedCard,
    stream: TcpStream,
}

impl vpicc::VSmartCard for Adapter {
    fn atr(&self) -> &[u8] {
        &ATR
    }

    fn power_on(&mut self) {
        self.shared.lock().card.power_cycle();
    }

    fn power_off(&mut self) {
        self.shared.lock().card.power_cycle();
    }

    fn reset(&mut self) {
        self.shared.lock().card.power_cycle();
    }

    fn execute(&mut self, msg: &[u8]) -> Vec<u8> {
        let mut slot = self.shared.lock();
        slot.apdu_count += 1;
        if let Some(ins) = msg.get(1) {
            slot.ins_log.push(*ins);
        }
        let number = slot.apdu_count;
        let response = slot.card.execute(msg);
        let action = slot.faults.apply(number, response);
        if matches!(action, FaultAction::Hang) {
            slot.hung_at = Some(number);
        }
        drop(slot);
        self.shared.notify();
        match action {
            FaultAction::Answer(bytes) => bytes,
            FaultAction::Hang => {
                log::info!("fault plan: the card stops answering at APDU {number}");
                // Block until vpcd closes the connection (pcscd gone, card removed): vpcd sends
                // nothing while it waits for this answer, so any read result means the end.
                let mut byte = [0u8; 1];
                let _ = self.stream.read(&mut byte);
                let _ = self.stream.shutdown(Shutdown::Both);
                Vec::new()
            }
            FaultAction::Drop => {
                log::info!("fault plan: dropping the connection at APDU {number}");
                // The empty answer cannot be sent on the closed socket: the serve loop ends.
                let _ = self.stream.shutdown(Shutdown::Both);
                Vec::new()
            }
        }
    }
}

/// Serves the card on an open vpcd connection until it closes (the card is removed), blocking.
pub fn serve(stream: TcpStream, shared: SharedCard) -> io::Result<()> {
    let control = stream.try_clone()?;
    let mut adapter = Adapter { shared, stream: control };
    vpicc::Connection::from(stream).run(&mut adapter)
}

/// A card inserted by a background thread.
pub struct Connection {
    thread: Option<JoinHandle<io::Result<()>>>,
    stream: TcpStream,
    /// When the TCP connection to vpcd was established (the physical "insertion").
    pub connected_at: Instant,
}

impl Connection {
    /// Connects to vpcd at `addr` and serves `shared` on a thread.
    pub fn open(addr: SocketAddr, shared: SharedCard) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        let connected_at = Instant::now();
        stream.set_nodelay(true)?;
        let control = stream.try_clone()?;
        reset_counters(&shared);
        let thread =
            std::thread::Builder::new().name(format!("vpiv-{}", addr.port())).spawn(move || serve(stream, shared))?;
        Ok(Connection { thread: Some(thread), stream: control, connected_at })
    }

    /// Whether the connection has ended (vpcd went away, or a drop fault fired).
    pub fn is_closed(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Closes the connection (removes the card) and waits for the serving thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(thread) = self.thread.take() {
            // The thread ends as soon as its blocking read sees the shutdown.
            let _ = thread.join();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn reset_counters(shared: &SharedCard) {
    let mut slot = shared.lock();
    slot.apdu_count = 0;
    slot.ins_log.clear();
    slot.hung_at = None;
}
