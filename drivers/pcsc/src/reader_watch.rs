//! Hot-plug: a dedicated thread blocks in `SCardGetStatusChange` on every reader plus the PnP
//! pseudo-reader (`\\?PnP?\Notification`, so readers appearing and disappearing wake it too).
//!
//! A card that arrives is reported at once, as pcscd reports it: `Inserted` under a provisional
//! id (reader and ATR), with no command sent to the card. Identifying it (connect, SELECT, CHUID,
//! discovery) takes a power-up and a few APDUs (tens to hundreds of milliseconds on real cards),
//! and a person plugging a key in should see it arrive without that wait; `Identified` follows
//! with who the card is, or `Removed` withdraws it when it is no carrier ukey can use. `Removed`
//! carries the identified id when the card leaves, its reader goes, or pcscd stops. When pcscd
//! comes back, the thread re-establishes its context and reports the cards present again.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ukey_api::{CarrierEvent, CarrierId, CarrierInfo, CarrierKind, Error, EventSink, Result, Watch};

use crate::context::PcscContext;
use crate::driver::reader_allowed;

/// How long one status-change wait lasts before the thread re-checks its reader list; a state
/// change ends the wait at once, so this bounds only the detection of an unnoticed daemon exit.
const WAIT: Duration = Duration::from_secs(2);
/// Pause between attempts to reach a pcscd that is down.
const RETRY: Duration = Duration::from_millis(200);
/// How long identification keeps trying a card that does not answer properly yet: right after
/// insertion pcscd may still be settling the card's protocol (`SCARD_E_PROTO_MISMATCH`).
const IDENTIFY_DEADLINE: Duration = Duration::from_secs(3);
/// Longest wait between two identification attempts; a change of the reader's state (the card
/// pulled out) ends it at once.
const IDENTIFY_PAUSE: Duration = Duration::from_millis(25);

/// Opens the card in a reader and says who it is; `NotSupported` for cards ukey cannot use.
pub type Opener = Arc<dyn Fn(&CStr) -> Result<CarrierInfo> + Send + Sync>;

/// The running watcher; dropping it stops and joins the thread.
pub struct ReaderWatch {
    stop: Option<Sender<()>>,
    blocking: Arc<Mutex<Option<pcsc::Context>>>,
    thread: Option<JoinHandle<()>>,
}

impl Watch for ReaderWatch {}

impl Drop for ReaderWatch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Ok(slot) = self.blocking.lock()
            && let Some(ctx) = slot.as_ref()
        {
            let _ = ctx.cancel();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A card ukey reported, by reader.
struct Present {
    id: CarrierId,
    event_count: u32,
}

struct Watcher {
    ctx: PcscContext,
    sink: EventSink,
    open: Opener,
    present: HashMap<CString, Present>,
    /// Cards withdrawn as unusable (no PIV application), by reader, with their event count: not
    /// reported again until another card is inserted there.
    ignored: HashMap<CString, u32>,
    blocking: Arc<Mutex<Option<pcsc::Context>>>,
}

/// Starts the watcher thread.
pub fn start(sink: EventSink, open: Opener) -> Result<ReaderWatch> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let blocking = Arc::new(Mutex::new(None));
    let mut watcher = Watcher {
        ctx: PcscContext::new(),
        sink,
        open,
        present: HashMap::new(),
        ignored: HashMap::new(),
        blocking: blocking.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("ukey-pcsc-watch".into())
        .spawn(move || watcher.run(&stop_rx))
        .map_err(|e| Error::io("start the PC/SC watcher thread", e))?;
    Ok(ReaderWatch { stop: Some(stop_tx), blocking, thread: Some(thread) })
}

fn stopped(stop: &mpsc::Receiver<()>) -> bool {
    matches!(stop.try_recv(), Err(mpsc::TryRecvError::Disconnected) | Ok(()))
}

impl Watcher {
    fn run(&mut self, stop: &mpsc::Receiver<()>) {
        let mut states: Vec<pcsc::ReaderState> = Vec::new();
        loop {
            if stopped(stop) {
                return;
            }
            let ctx = match self.ctx.get() {
                Ok(ctx) => ctx,
                Err(_) => {
                    self.all_gone();
                    states.clear();
                    match stop.recv_timeout(RETRY) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        _ => return,
                    }
                }
            };
            if let Ok(mut slot) = self.blocking.lock() {
                *slot = Some(ctx.clone());
            }
            if stopped(stop) {
                return;
            }
            if let Err(e) = self.sync_readers(&ctx, &mut states) {
                log::debug!("listing readers: {e}");
                self.daemon_lost(&mut states);
                continue;
            }
            match ctx.get_status_change(WAIT, &mut states) {
                Ok(()) => self.apply(&mut states),
                Err(pcsc::Error::Timeout) => {}
                Err(pcsc::Error::Cancelled) => {
                    if stopped(stop) {
                        return;
                    }
                }
                Err(pcsc::Error::UnknownReader) => {}
                Err(
                    pcsc::Error::NoService
                    | pcsc::Error::ServiceStopped
                    | pcsc::Error::InvalidHandle
                    | pcsc::Error::CommError,
                ) => {
                    self.daemon_lost(&mut states);
                }
                Err(e) => {
                    log::warn!("PC/SC status wait failed: {e}");
                    if !matches!(stop.recv_timeout(RETRY), Err(RecvTimeoutError::Timeout)) {
                        return;
                    }
                }
            }
        }
    }

    /// Makes `states` the PnP entry plus one entry per reader present now.
    fn sync_readers(&mut self, ctx: &pcsc::Context, states: &mut Vec<pcsc::ReaderState>) -> Result<()> {
        let readers = match ctx.list_readers_owned() {
            Ok(r) => r,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => return Err(crate::errors::map(e, "list readers")),
        };
        if states.is_empty() {
            states.push(pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pcsc::State::UNAWARE));
        }
        states.retain(|rs| rs.name() == pcsc::PNP_NOTIFICATION() || readers.iter().any(|r| r.as_c_str() == rs.name()));
        let gone: Vec<CString> = self.present.keys().filter(|k| !readers.contains(k)).cloned().collect();
        for reader in gone {
            self.removed(&reader);
        }
        for reader in readers {
            if !states.iter().any(|rs| rs.name() == reader.as_c_str()) {
                states.push(pcsc::ReaderState::new(reader, pcsc::State::UNAWARE));
            }
        }
        Ok(())
    }

    fn apply(&mut self, states: &mut [pcsc::ReaderState]) {
        for rs in states.iter_mut() {
            let event = rs.event_state();
            if rs.name() == pcsc::PNP_NOTIFICATION() {
                rs.sync_current_state();
                continue;
            }
            if !event.contains(pcsc::State::CHANGED) {
                continue;
            }
            let reader = rs.name().to_owned();
            let present = event.contains(pcsc::State::PRESENT) && !event.contains(pcsc::State::MUTE);
            let count = rs.event_count();
            let atr = rs.atr().to_vec();
            if !present {
                self.ignored.remove(&reader);
            } else if self.ignored.get(&reader) == Some(&count) {
                rs.sync_current_state();
                continue;
            }
            match (present, self.present.get(&reader)) {
                (true, None) => self.inserted(&reader, &atr, count),
                // Removed and inserted again between two waits: the event counter moved.
                (true, Some(p)) if p.event_count != count && !event.contains(pcsc::State::INUSE) => {
                    self.removed(&reader);
                    self.inserted(&reader, &atr, count);
                }
                (false, Some(_)) => self.removed(&reader),
                _ => {}
            }
            if let Some(p) = self.present.get_mut(&reader) {
                p.event_count = count;
            }
            rs.sync_current_state();
        }
    }

    /// Reports the card in `reader` at once, then identifies it (see the module comment).
    fn inserted(&mut self, reader: &CStr, atr: &[u8], event_count: u32) {
        if !reader_allowed(reader) {
            log::debug!("card in {} ignored: the reader is excluded", reader.to_string_lossy());
            return;
        }
        let arrived = provisional_info(reader, atr);
        let provisional = arrived.id.clone();
        (self.sink)(CarrierEvent::Inserted { info: Box::new(arrived) });
        match self.identify(reader) {
            Ok(info) => {
                self.present.insert(reader.to_owned(), Present { id: info.id.clone(), event_count });
                (self.sink)(CarrierEvent::Identified { provisional, info: Box::new(info) });
            }
            Err(e) => {
                match e {
                    Error::NotSupported(why) => {
                        log::debug!("card in {} ignored: {why}", reader.to_string_lossy());
                        self.ignored.insert(reader.to_owned(), event_count);
                    }
                    Error::TokenRemoved => log::debug!("card in {} left while being read", reader.to_string_lossy()),
                    e => log::warn!("card in {} could not be opened: {e}", reader.to_string_lossy()),
                }
                (self.sink)(CarrierEvent::Removed { id: provisional });
            }
        }
    }

    /// Opens the card in `reader`, trying again for a bounded time while it does not answer
    /// properly yet (a card still settling after insertion); a removal or a card without a
    /// usable application ends it at once.
    fn identify(&self, reader: &CStr) -> Result<CarrierInfo> {
        let deadline = Instant::now() + IDENTIFY_DEADLINE;
        loop {
            match (self.open)(reader) {
                Err(Error::Device(why)) if Instant::now() < deadline => {
                    log::debug!("card in {} not ready yet: {why}", reader.to_string_lossy());
                    if !self.still_present_after(reader, IDENTIFY_PAUSE) {
                        return Err(Error::TokenRemoved);
                    }
                }
                other => return other,
            }
        }
    }

    /// Waits up to `pause` for the reader's state to change; false when the card is gone.
    fn still_present_after(&self, reader: &CStr, pause: Duration) -> bool {
        let Ok(ctx) = self.ctx.get() else { return false };
        let mut state = [pcsc::ReaderState::new(reader.to_owned(), pcsc::State::UNAWARE)];
        if ctx.get_status_change(Duration::ZERO, &mut state).is_err() {
            return false;
        }
        state[0].sync_current_state();
        match ctx.get_status_change(pause, &mut state) {
            Ok(()) | Err(pcsc::Error::Timeout) => state[0].event_state().contains(pcsc::State::PRESENT),
            Err(_) => false,
        }
    }

    fn removed(&mut self, reader: &CStr) {
        if let Some(p) = self.present.remove(reader) {
            (self.sink)(CarrierEvent::Removed { id: p.id });
        }
    }

    fn all_gone(&mut self) {
        let readers: Vec<CString> = self.present.keys().cloned().collect();
        for reader in readers {
            self.removed(&reader);
        }
    }

    fn daemon_lost(&mut self, states: &mut Vec<pcsc::ReaderState>) {
        log::info!("pcscd went away; waiting for it to come back");
        self.all_gone();
        states.clear();
        self.ctx.invalidate();
    }
}

/// What is known of a card before any command reached it: where it is and its ATR. The id is
/// provisional (reader and ATR); [`CarrierEvent::Identified`] gives the stable one.
fn provisional_info(reader: &CStr, atr: &[u8]) -> CarrierInfo {
    let location = reader.to_string_lossy().into_owned();
    let atr_hex = hex::encode_upper(atr);
    CarrierInfo {
        id: CarrierId::new(CarrierKind::Pcsc, &["card-in", &location, &atr_hex]),
        kind: CarrierKind::Pcsc,
        label: format!("card in {location}"),
        manufacturer: String::new(),
        model: "smart card (being read)".into(),
        serial: String::new(),
        location,
        atr: Some(atr.to_vec()),
        usb: None,
        catalog_entry: None,
        software: false,
        read_only: false,
        initialized: false,
    }
}
