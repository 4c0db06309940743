//! Hot-plug events from the driver's watcher, and recovery when pcscd is killed and restarted
//! (under the harness's exclusive pcscd lease, so no other test is disturbed).

mod common;

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::*;
use ukey_api::{Carrier, CarrierEvent, CarrierId, Driver, EventSink, KeyAlgorithm, Mechanism, ObjectId, SignInput};
use ukey_pcsc::PcscDriver;
use ukey_vpiv::faults::{FaultMode, FaultPlan};
use ukey_vpiv::harness::ReaderLease;

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Waits for the next event about `reader`'s card that matches `want`.
fn next_event(rx: &Receiver<CarrierEvent>, want: impl Fn(&CarrierEvent) -> bool) -> CarrierEvent {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) if want(&e) => return e,
            Ok(_) => continue,
            Err(e) => panic!("no matching carrier event within {EVENT_TIMEOUT:?}: {e}"),
        }
    }
}

fn watch(driver: &PcscDriver) -> (Box<dyn ukey_api::Watch>, Receiver<CarrierEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let sink: EventSink = Arc::new(move |e| {
        if let Ok(tx) = tx.lock() {
            let _ = tx.send(e);
        }
    });
    (driver.watch(sink).expect("watch"), rx)
}

fn inserted_id(lease: &ReaderLease) -> impl Fn(&CarrierEvent) -> bool + '_ {
    move |e| matches!(e, CarrierEvent::Inserted { info } if info.location == lease.reader_name())
}

fn identified(lease: &ReaderLease) -> impl Fn(&CarrierEvent) -> bool + '_ {
    move |e| matches!(e, CarrierEvent::Identified { info, .. } if info.location == lease.reader_name())
}

fn removed(id: CarrierId) -> impl Fn(&CarrierEvent) -> bool {
    move |e| matches!(e, CarrierEvent::Removed { id: got } if *got == id)
}

#[test]
fn insertion_and_removal_are_reported_with_a_stable_id() {
    let lease = lease();
    let driver = PcscDriver::new(options());
    let (_watch, rx) = watch(&driver);
    let inserted = lease.insert(card()).expect("insert");
    let guid = hex::encode_upper(inserted.slot().card.guid());
    // Reported as pcscd sees it, before any command: reader and ATR under a provisional id ...
    let CarrierEvent::Inserted { info: arrived } = next_event(&rx, inserted_id(&lease)) else { unreachable!() };
    assert_eq!(arrived.atr.as_deref(), Some(&ukey_vpiv::ATR[..]), "the ATR comes with the first event");
    // ... then who it is, under the stable id every later event uses.
    let CarrierEvent::Identified { provisional, info } = next_event(&rx, identified(&lease)) else { unreachable!() };
    assert_eq!(provisional, arrived.id);
    assert_eq!(info.id.as_str(), format!("pcsc:piv:{guid}"));
    let (shared, _) = inserted.remove().expect("remove");
    next_event(&rx, removed(info.id.clone()));
    // The same card comes back with the same id.
    let again = lease.insert_shared(shared).expect("insert again");
    let CarrierEvent::Identified { info: info2, .. } = next_event(&rx, identified(&lease)) else { unreachable!() };
    assert_eq!(info2.id, info.id);
    // The driver lists it too.
    assert!(driver.carriers().expect("carriers").iter().any(|c| c.info().id == info.id));
    again.remove().expect("remove");
    next_event(&rx, removed(info.id.clone()));
}

#[test]
fn pcscd_killed_and_restarted_is_survived_without_restarting_ukey() {
    let lease = ReaderLease::acquire_any_exclusive(LEASE_TIMEOUT).expect("exclusive pcscd lease");
    let driver = PcscDriver::new(options());
    let (_watch, rx) = watch(&driver);
    let inserted = lease.insert(card()).expect("insert");
    let CarrierEvent::Identified { info, .. } = next_event(&rx, identified(&lease)) else { unreachable!() };
    let carrier = open(&lease);
    let key = keygen(&carrier, 0x9A, KeyAlgorithm::P256);

    lease.stop_pcscd().expect("stop pcscd");
    // The card went with the daemon (vpcd lives in pcscd): the watcher says so.
    next_event(&rx, removed(info.id.clone()));
    let err = carrier.pin_state().unwrap_err();
    assert!(err.to_string().contains("pcscd") || matches!(err, ukey_api::Error::TokenRemoved), "{err:?}");
    assert!(driver.status().iter().any(|s| !s.ok && s.message.contains("pcscd")), "{:?}", driver.status());

    lease.start_pcscd().expect("start pcscd");
    let (shared, _) = inserted.remove().unwrap_or_else(|e| panic!("remove after restart: {e}"));
    let _back = lease.insert_shared(shared).expect("insert after restart");
    let CarrierEvent::Identified { info: back, .. } = next_event(&rx, identified(&lease)) else { unreachable!() };
    assert_eq!(back.id, info.id);
    // The old handle reconnects through a new context: same reader, same ATR.
    sign_and_verify(&carrier, &key, &Mechanism::EcdsaSha256, b"after pcscd restart");
    assert!(driver.status().iter().all(|s| s.ok), "{:?}", driver.status());
}

/// pcscd dies (SIGKILL, as in a crash) while a signature is inside the card: the signature ends
/// at once with an error that names pcscd (no hang, no panic), and once pcscd runs again the
/// same long-lived driver, its watcher and the carrier handle opened before the crash all work
/// again: the card is reported, listed and signs, with no restart of ukey.
#[test]
fn pcscd_killed_mid_signature_is_a_clear_error_and_the_same_process_recovers() {
    let lease = ReaderLease::acquire_any_exclusive(LEASE_TIMEOUT).expect("exclusive pcscd lease");
    let driver = PcscDriver::new(options());
    let (_watch, rx) = watch(&driver);
    let inserted = lease.insert(card()).expect("insert");
    let CarrierEvent::Identified { info, .. } = next_event(&rx, identified(&lease)) else { unreachable!() };
    let carrier = driver
        .carriers()
        .expect("carriers")
        .into_iter()
        .find(|c| c.info().id == info.id)
        .expect("the driver lists the card");
    let key = keygen(carrier.as_ref(), 0x9A, KeyAlgorithm::P256);

    // The card stops answering at the signature's third APDU (SELECT, VERIFY, then GENERAL
    // AUTHENTICATE): the command is inside the card when pcscd dies.
    let shared = inserted.shared();
    let hang_at = {
        let mut slot = inserted.slot();
        let at = slot.apdu_count + 3;
        slot.faults = FaultPlan::at(FaultMode::Hang, at);
        at
    };
    let (done_tx, done_rx) = mpsc::channel();
    let signer = Arc::clone(&carrier);
    let signing = std::thread::spawn(move || {
        let input = SignInput { digest: vec![0x42; 32], message: None };
        let _ = done_tx.send(signer.sign(&ObjectId(vec![0x9A]), &Mechanism::EcdsaSha256, &input, &pin(PIN)));
    });
    assert!(
        shared.wait_until(EVENT_TIMEOUT, |slot| slot.hung_at == Some(hang_at)),
        "the signature never reached its GENERAL AUTHENTICATE"
    );
    assert_eq!(shared.lock().ins_log.last(), Some(&0x87), "the card hangs inside GENERAL AUTHENTICATE");
    lease.kill_pcscd().expect("kill pcscd");

    let outcome = done_rx.recv_timeout(EVENT_TIMEOUT).expect("the signature returned after pcscd died (no hang)");
    signing.join().expect("the signing thread did not panic");
    let err = outcome.expect_err("no signature without pcscd");
    assert!(
        err.to_string().contains("pcscd") || matches!(err, ukey_api::Error::TokenRemoved),
        "the error says what happened: {err}"
    );
    next_event(&rx, removed(info.id.clone()));

    // pcscd comes back; the card (state kept) is inserted again.
    lease.start_pcscd().expect("start pcscd");
    let (shared, _) = inserted.remove().unwrap_or_else(|e| panic!("remove after the crash: {e}"));
    shared.lock().faults = FaultPlan::none();
    let _back = lease.insert_shared(shared).expect("insert after restart");
    let CarrierEvent::Identified { info: back, .. } = next_event(&rx, identified(&lease)) else { unreachable!() };
    assert_eq!(back.id, info.id, "the same card, the same id");
    assert!(driver.carriers().expect("carriers after restart").iter().any(|c| c.info().id == info.id));
    // The handle opened before the crash reconnects and signs; no PIN try was spent by the crash.
    sign_and_verify(carrier.as_ref(), &key, &Mechanism::EcdsaSha256, b"after pcscd was killed");
    assert_eq!(carrier.pin_state().expect("pin state").user.retries_left, Some(3));
    assert!(driver.status().iter().all(|s| s.ok), "{:?}", driver.status());
}
