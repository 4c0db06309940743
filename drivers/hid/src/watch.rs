//! Hot-plug for HID carriers. hidapi has no hot-plug notification, so a thread lists the devices
//! every poll interval and reports the difference: `Inserted` (with the carrier's identity, read
//! by opening it) for a carrier that appeared, `Removed` with the same id for one that went.
//! A device is keyed by path, USB ids and serial, so a different token that reuses a hidraw
//! number between two looks is still seen as a removal and an insertion.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use ukey_api::{CarrierEvent, CarrierId, CarrierInfo, Error, EventSink, Result, Watch};

use crate::matching::Candidate;

/// Lists the carrier candidates present now.
pub type Lister = Arc<dyn Fn() -> Result<Vec<Candidate>> + Send + Sync>;
/// Opens a candidate and says who it is.
pub type Opener = Arc<dyn Fn(&Candidate) -> Result<CarrierInfo> + Send + Sync>;

type Identity = (String, u16, u16, Option<String>);

/// The running watcher; dropping it stops and joins the thread (within one poll interval at
/// most: the stop signal ends the wait at once).
pub struct HidWatch {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watch for HidWatch {}

impl Drop for HidWatch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the watcher thread: it reports the carriers present now, then every change, looking
/// every `poll`.
pub fn start(list: Lister, open: Opener, sink: EventSink, poll: Duration) -> Result<HidWatch> {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let mut watcher = Watcher { list, open, sink, present: HashMap::new() };
    let thread = std::thread::Builder::new()
        .name("ukey-hid-watch".into())
        .spawn(move || {
            loop {
                watcher.scan();
                match stop_rx.recv_timeout(poll) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
        .map_err(|e| Error::io("start the HID watcher thread", e))?;
    Ok(HidWatch { stop: Some(stop_tx), thread: Some(thread) })
}

struct Watcher {
    list: Lister,
    open: Opener,
    sink: EventSink,
    /// Devices seen: the carrier id reported for each, or `None` for a device that could not be
    /// opened (not retried until it is unplugged and plugged again).
    present: HashMap<Identity, Option<CarrierId>>,
}

impl Watcher {
    fn scan(&mut self) {
        let now = match (self.list)() {
            Ok(list) => list,
            Err(e) => {
                log::debug!("listing HID devices: {e}");
                return;
            }
        };
        let current: HashMap<Identity, &Candidate> = now.iter().map(|c| (c.identity(), c)).collect();
        let gone: Vec<Identity> = self.present.keys().filter(|k| !current.contains_key(*k)).cloned().collect();
        for key in gone {
            if let Some(Some(id)) = self.present.remove(&key) {
                (self.sink)(CarrierEvent::Removed { id });
            }
        }
        for (key, candidate) in current {
            if self.present.contains_key(&key) {
                continue;
            }
            match (self.open)(candidate) {
                Ok(info) => {
                    self.present.insert(key, Some(info.id.clone()));
                    (self.sink)(CarrierEvent::Inserted { info: Box::new(info) });
                }
                // Gone already, or another program holds it: look again next time.
                Err(Error::TokenRemoved | Error::Busy(_) | Error::Timeout(_)) => {}
                Err(e) => {
                    log::warn!("HID token at {} could not be opened: {e}", candidate.device.path);
                    self.present.insert(key, None);
                }
            }
        }
    }
}
