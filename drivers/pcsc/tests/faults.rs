//! Faults on the real PC/SC path: the card pulled out mid-signature, cards that answer garbage,
//! two handles (as two processes) signing at once.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ukey_api::{Carrier, Error, KeyAlgorithm, Mechanism, SignInput};
use ukey_vpiv::{FaultMode, FaultPlan};

#[test]
fn card_removed_mid_signature_is_token_removed_and_the_next_insertion_works() {
    let lease = lease();
    let inserted = lease.insert(card()).expect("insert");
    let carrier = open(&lease);
    let key = keygen(&carrier, 0x9A, KeyAlgorithm::P256);
    // The signature is SELECT, VERIFY, GENERAL AUTHENTICATE: drop the card at the third.
    {
        let mut slot = inserted.slot();
        let next = slot.apdu_count + 3;
        slot.faults = FaultPlan::at(FaultMode::Drop, next);
    }
    let input = SignInput { digest: vec![0x11; 32], message: None };
    let err = carrier.sign(&key.id, &Mechanism::EcdsaSha256, &input, &pin(PIN)).unwrap_err();
    assert!(matches!(err, Error::TokenRemoved), "{err:?}");
    // The handle stays gone.
    assert!(matches!(carrier.pin_state(), Err(Error::TokenRemoved)));

    let (shared, _) = inserted.remove().expect("remove");
    shared.lock().faults = FaultPlan::none();
    let _again = lease.insert_shared(shared).expect("insert again");
    let carrier = open(&lease);
    sign_and_verify(&carrier, &key, &Mechanism::EcdsaSha256, b"after re-insertion");
}

#[test]
fn garbage_answers_are_clear_errors_never_panics_or_hangs() {
    let lease = lease();
    for mode in
        [FaultMode::TruncatedTlv, FaultMode::WrongLengths, FaultMode::EndlessGetResponse, FaultMode::BogusStatus]
    {
        let inserted = lease.insert(card()).expect("insert");
        let carrier = open(&lease);
        let key = keygen(&carrier, 0x9A, KeyAlgorithm::P256);
        {
            let mut slot = inserted.slot();
            let next = slot.apdu_count + 1;
            slot.faults = FaultPlan::at(mode, next);
        }
        let started = Instant::now();
        let listed = carrier.objects();
        let state = carrier.pin_state();
        let signed = carrier.sign(
            &key.id,
            &Mechanism::EcdsaSha256,
            &SignInput { digest: vec![1; 32], message: None },
            &pin(PIN),
        );
        assert!(started.elapsed() < Duration::from_secs(30), "{mode:?} took {:?}", started.elapsed());
        let clear = |what: &str, err: Error| {
            assert!(
                matches!(err, Error::Device(_) | Error::NotSupported(_) | Error::InvalidInput(_) | Error::NotFound(_)),
                "{mode:?}: {what}: {err:?}"
            );
            assert!(!err.to_string().is_empty());
        };
        // A signature never comes out of a garbled exchange.
        clear("sign", signed.expect_err(&format!("{mode:?}: sign must fail")));
        match listed {
            // Unreadable objects are reported beside the others, never listed as certificates.
            Ok(list) => assert!(list.certificates.is_empty(), "{mode:?}: {list:?}"),
            Err(e) => clear("objects", e),
        }
        match (mode, state) {
            // Status words alone carry the PIN state: garbled data cannot be told from a valid
            // answer there, only a garbled status word can.
            (FaultMode::TruncatedTlv | FaultMode::WrongLengths, _) => {}
            (_, Ok(s)) => panic!("{mode:?}: pin_state must fail, got {s:?}"),
            (_, Err(e)) => clear("pin_state", e),
        }
        inserted.remove().expect("remove");
    }
}

#[test]
fn two_handles_signing_at_once_both_succeed_without_interleaving() {
    let lease = lease();
    let inserted = lease.insert(card()).expect("insert");
    let setup = open(&lease);
    let key = keygen(&setup, 0x9A, KeyAlgorithm::P256);
    drop(setup);
    // Two carriers on two PC/SC contexts: to pcscd these are two clients, like two processes.
    let a: Arc<dyn Carrier> = Arc::new(open(&lease));
    let b: Arc<dyn Carrier> = Arc::new(open(&lease));
    let start_log = inserted.slot().ins_log.len();
    const ROUNDS: usize = 15;
    let threads: Vec<_> = [a, b]
        .into_iter()
        .map(|carrier| {
            let key = key.clone();
            std::thread::spawn(move || {
                for i in 0..ROUNDS {
                    sign_and_verify(carrier.as_ref(), &key, &Mechanism::EcdsaSha256, format!("round {i}").as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("signer thread");
    }
    // Every signature is SELECT (A4), VERIFY (20), GENERAL AUTHENTICATE (87), logout VERIFY
    // (20): with transactions, the card saw exactly these blocks back to back.
    let log = inserted.slot().ins_log[start_log..].to_vec();
    assert_eq!(log.len(), 2 * ROUNDS * 4, "{log:02X?}");
    for block in log.chunks(4) {
        assert_eq!(block, [0xA4, 0x20, 0x87, 0x20], "interleaved APDUs: {log:02X?}");
    }
}
