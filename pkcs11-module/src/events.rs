//! `C_WaitForSlotEvent`, fed by the agent's carrier events.
//!
//! An event is a slot whose token appeared or went away since the program last heard of it.
//! Changes are noticed whenever the carrier list is read (by any function), so none is lost
//! between calls. A blocking wait subscribes to the agent's `events.subscribe` on a connection
//! of its own and re-reads the carrier list on each event; it gives up when `C_Finalize` runs
//! (checked at least twice a second), as PKCS#11 requires. Without an agent it waits for one to
//! start.

use std::time::Duration;

use cryptoki_sys::*;

use crate::module::{self, Module};
use crate::rv::P11Result;

/// How often a blocked wait checks for `C_Finalize`.
const POLL: Duration = Duration::from_millis(500);

/// `C_WaitForSlotEvent`.
pub fn wait(flags: CK_FLAGS) -> P11Result<CK_SLOT_ID> {
    let m = module::current()?;
    m.refresh_slots();
    if let Some(slot) = m.lock().slots.take_event() {
        return Ok(slot);
    }
    if flags & CKF_DONT_BLOCK != 0 {
        return Err(CKR_NO_EVENT);
    }
    block(&m)
}

fn block(m: &Module) -> P11Result<CK_SLOT_ID> {
    let mut events = None;
    loop {
        if m.finalized() {
            return Err(CKR_CRYPTOKI_NOT_INITIALIZED);
        }
        if events.is_none() {
            match m.agent.subscribe() {
                Ok(link) => {
                    events = Some(link);
                    // Something may have changed before the subscription started.
                    m.refresh_slots();
                }
                Err(e) => {
                    log::debug!("waiting for the agent to start: {e}");
                    std::thread::sleep(POLL);
                    m.refresh_slots();
                }
            }
        } else if let Some(link) = events.as_mut() {
            match link.next_notification(POLL) {
                Ok(Some(_)) => m.refresh_slots(),
                Ok(None) => {}
                Err(e) => {
                    log::debug!("the agent's event stream ended: {e}");
                    events = None;
                    m.refresh_slots();
                }
            }
        }
        if let Some(slot) = m.lock().slots.take_event() {
            return Ok(slot);
        }
    }
}
