//! Hot-plug: tokens appearing and disappearing, as [`CarrierEvent`]s.
//!
//! A watcher thread compares the set of present tokens with the last one, rescanning the slot
//! lists every interval. Modules that answer `C_WaitForSlotEvent` (asked in non-blocking mode so
//! the thread can always stop) are also checked for events every quarter interval, and an event
//! triggers the rescan at once; modules that do not (`CKR_FUNCTION_NOT_SUPPORTED`) are simply
//! polled. SoftHSM answers `CKR_NO_EVENT` forever, so for it the polling is what finds changes. A blocking
//! `C_WaitForSlotEvent` is never used: it can only be interrupted by `C_Finalize`, which would
//! pull the module out from under the carriers still using it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use cryptoki::error::{Error as CkError, RvError};
use log::debug;
use ukey_api::{CarrierEvent, CarrierId, CarrierInfo, EventSink, Result, Watch};

use crate::driver::Inner;

/// Keeps the watcher thread alive; dropping it stops and joins the thread.
pub struct Pkcs11Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch for Pkcs11Watch {}

impl Drop for Pkcs11Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.join().is_err() {
                debug!("the PKCS#11 watcher thread panicked");
            }
        }
    }
}

/// Starts watching; tokens present now are reported as `Inserted` before this returns.
pub(crate) fn start(inner: Arc<Inner>, sink: EventSink) -> Result<Pkcs11Watch> {
    let mut known = snapshot(&inner);
    for info in known.values() {
        sink(CarrierEvent::Inserted { info: Box::new(info.clone()) });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ukey-pkcs11-watch".into())
        .spawn(move || {
            let events: Vec<bool> = inner.modules.iter().map(|m| supports_events(m.module.ctx())).collect();
            let any_events = events.iter().any(|e| *e);
            let tick = if any_events { inner.poll / 4 } else { inner.poll };
            let full_every = inner.poll;
            let mut last_full = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                std::thread::park_timeout(tick);
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let mut changed = false;
                for (m, has_events) in inner.modules.iter().zip(&events) {
                    if *has_events {
                        while let Ok(Some(slot)) = m.module.ctx().get_slot_event() {
                            debug!("{}: slot event on slot {}", m.spec.name, slot.id());
                            changed = true;
                        }
                    }
                }
                if !changed && last_full.elapsed() < full_every {
                    continue;
                }
                last_full = Instant::now();
                let now = snapshot(&inner);
                for (id, info) in &now {
                    if !known.contains_key(id) {
                        sink(CarrierEvent::Inserted { info: Box::new(info.clone()) });
                    }
                }
                for id in known.keys() {
                    if !now.contains_key(id) {
                        sink(CarrierEvent::Removed { id: id.clone() });
                    }
                }
                known = now;
            }
        })
        .map_err(|e| ukey_api::Error::io("starting the PKCS#11 hot-plug watcher", e))?;
    Ok(Pkcs11Watch { stop, thread: Some(thread) })
}

/// Whether the module answers a non-blocking `C_WaitForSlotEvent` at all.
fn supports_events(ctx: &cryptoki::context::Pkcs11) -> bool {
    match ctx.get_slot_event() {
        Ok(_) => true,
        Err(CkError::Pkcs11(RvError::FunctionNotSupported, _)) | Err(CkError::NullFunctionPointer) => false,
        Err(e) => {
            debug!("C_WaitForSlotEvent: {e}; polling instead");
            false
        }
    }
}

fn snapshot(inner: &Inner) -> BTreeMap<CarrierId, CarrierInfo> {
    inner.present().0.into_iter().map(|(_, info)| (info.id.clone(), info)).collect()
}
