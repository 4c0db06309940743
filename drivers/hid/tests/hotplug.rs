//! Hot-plug of HID carriers by enumeration diff: a token already present is reported at start,
//! a new one when it appears, a removal with the same id, a re-insertion with the same id again,
//! and a device the catalog does not know never.
//!
//! TEST DOUBLE: the devices are the crate's in-process emulated tokens on an emulated bus (this
//! kernel has no `/dev/uhid`, so no virtual HID device can exist); the driver and watcher are the
//! production code.

mod common;

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ukey_api::{CarrierEvent, Driver, EventSink};
use ukey_hid::HidDriver;
use ukey_hid::emulator::EmulatedBus;

/// Longest wait for an event: many poll intervals, generous for a loaded machine.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

fn sink() -> (EventSink, Receiver<CarrierEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let sink: EventSink = Arc::new(move |event| {
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(event);
        }
    });
    (sink, rx)
}

fn next(rx: &Receiver<CarrierEvent>) -> CarrierEvent {
    rx.recv_timeout(EVENT_TIMEOUT).unwrap_or_else(|_| panic!("no hot-plug event within {EVENT_TIMEOUT:?}"))
}

#[test]
fn insertion_removal_and_reinsertion_are_reported_with_a_stable_id() {
    let (catalog, _dir) = hid_catalog();
    let bus = EmulatedBus::new();
    let first = SharedPiv::new();
    let token_a = first.token("emulated:hotplug-a");
    bus.plug(&token_a, VID, PID, Some("A"));
    let driver = HidDriver::new(Arc::new(bus.clone()), catalog, options())
        .with_timeouts(quick())
        .with_poll_interval(Duration::from_millis(20));
    let (sink, rx) = sink();
    let watch = driver.watch(sink).expect("watch");

    // Present at start.
    let CarrierEvent::Inserted { info: a } = next(&rx) else { panic!("expected Inserted") };
    assert_eq!(a.location, "emulated:hotplug-a");
    assert_eq!(a.catalog_entry.as_deref(), Some(ENTRY));

    // A device the catalog does not know, then a second carrier.
    bus.plug(&SharedPiv::new().token("emulated:stranger"), 0x1209, 0xFFFE, None);
    let second = SharedPiv::new();
    bus.plug(&second.token("emulated:hotplug-b"), VID, PID, Some("B"));
    let CarrierEvent::Inserted { info: b } = next(&rx) else { panic!("expected Inserted") };
    assert_eq!(b.location, "emulated:hotplug-b");
    assert_ne!(a.id, b.id);

    // Removal carries the id of the insertion.
    bus.unplug("emulated:hotplug-a");
    assert_eq!(next(&rx), CarrierEvent::Removed { id: a.id.clone() });

    // The same card comes back (new token, same card state): the same id.
    bus.plug(&first.token("emulated:hotplug-a2"), VID, PID, Some("A"));
    let CarrierEvent::Inserted { info: again } = next(&rx) else { panic!("expected Inserted") };
    assert_eq!(again.id, a.id);

    drop(watch);
    // Nothing else was reported (the stranger never).
    assert!(rx.try_recv().is_err());
}
