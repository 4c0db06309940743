//! Hot-plug events for a store directory: a token file appearing is an insertion, its removal a
//! removal, a change to its label or objects a `Changed` event.
//!
//! The directory is polled every 250 ms; a poll costs one `readdir` and one `stat` per token, and
//! a token file is re-read only when its size, inode or modification time moved.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use ukey_api::{CarrierEvent, CarrierId, CarrierKind, EventSink, Result, Watch};

use crate::format::TokenState;
use crate::listing::carrier_info;
use crate::store::Store;

/// Time between two looks at the directory.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What was last seen of one token file.
#[derive(PartialEq, Eq)]
struct Seen {
    stamp: (u64, u64, i64, i64),
    content: [u8; 32],
}

/// A running watcher; dropping it stops and joins the thread.
pub struct StoreWatch {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watch for StoreWatch {}

impl StoreWatch {
    /// Reports the tokens present now as `Inserted`, then watches in a thread of its own.
    pub fn start(store: Store, sink: EventSink) -> Result<StoreWatch> {
        let mut seen = BTreeMap::new();
        poll(&store, &mut seen, &sink);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ukey-soft-watch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL_INTERVAL) {
                    poll(&store, &mut seen, &sink);
                }
            })
            .map_err(|e| ukey_api::Error::io("could not start the soft-token watcher thread", e))?;
        Ok(StoreWatch { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for StoreWatch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The part of a token whose change is worth an event: label and objects, not PIN counters.
fn content_digest(state: &TokenState) -> [u8; 32] {
    let visible = (&state.label, &state.keys, &state.certificates, &state.data);
    let bytes = serde_json::to_vec(&visible).unwrap_or_default();
    Sha256::digest(&bytes).into()
}

fn poll(store: &Store, seen: &mut BTreeMap<String, Seen>, sink: &EventSink) {
    let serials = match store.serials() {
        Ok(s) => s,
        Err(e) => {
            log::warn!("soft-token watcher: {e}");
            return;
        }
    };
    let gone: Vec<String> = seen.keys().filter(|s| !serials.contains(s)).cloned().collect();
    for serial in gone {
        seen.remove(&serial);
        sink(CarrierEvent::Removed { id: CarrierId::new(CarrierKind::Soft, &[&serial]) });
    }
    for serial in serials {
        let files = store.files(&serial);
        let Ok(meta) = std::fs::metadata(&files.path) else { continue };
        let stamp = (meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec());
        if seen.get(&serial).is_some_and(|s| s.stamp == stamp) {
            continue;
        }
        // Unreadable tokens are not reported (they are not carriers); `status()` names them.
        let Ok(state) = files.load_unlocked() else { continue };
        let content = content_digest(&state);
        let previous = seen.insert(serial.clone(), Seen { stamp, content });
        match previous {
            None => sink(CarrierEvent::Inserted { info: Box::new(carrier_info(&state, &files.path)) }),
            Some(old) if old.content != content => {
                sink(CarrierEvent::Changed { id: CarrierId::new(CarrierKind::Soft, &[&serial]) })
            }
            Some(_) => {}
        }
    }
}
