//! Fault injection: the card pulled out at every APDU of a PIV signature and of a key
//! generation, not only at a chosen one. For each n the n-th APDU of the operation fails as a
//! removal does; the operation must end in `TokenRemoved` (or succeed, when n is past its last
//! APDU), never panic or hang, and the card must stay usable afterwards: no PIN try lost, the old
//! key still signing or the new one in place, the listing readable.
//!
//! The card is the test rig's virtual PIV card run in-process; only the PC/SC hop is replaced (by
//! a transport that counts APDUs), because pulling a vpcd card at an exact APDU thousands of times
//! through pcscd would take minutes. `faults.rs` covers the same on the real pcscd path at chosen
//! APDUs.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use ukey_api::crypto::prepare::SignData;
use ukey_api::crypto::verify::verify_signature;
use ukey_api::{Carrier, CarrierKind, Error, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId, Result, SignInput};
use ukey_iso7816::{ApduPipe, CardTransport, PivCarrier};
use ukey_vpiv::{ATR, VirtualPiv};

/// The most APDUs one operation may take before the test calls it a hang.
const MAX_APDUS: usize = 200;

/// The shared card and the number of APDUs it still answers before it is "removed".
struct Slot {
    card: VirtualPiv,
    budget: Option<usize>,
    seen: usize,
    /// An APDU met the removal (the budget alone cannot say: an operation may end with exactly
    /// its budget spent).
    pulled: bool,
}

struct InProcess(Arc<Mutex<Slot>>);

impl ApduPipe for InProcess {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>> {
        let mut slot = self.0.lock().expect("card lock");
        slot.seen += 1;
        assert!(slot.seen <= MAX_APDUS, "more than {MAX_APDUS} APDUs: the host loops");
        match slot.budget {
            Some(0) => {
                slot.pulled = true;
                // Pulled out: the card loses its volatile state (PIN verified, management auth).
                slot.card.power_cycle();
                Err(Error::TokenRemoved)
            }
            Some(ref mut n) => {
                *n -= 1;
                Ok(slot.card.execute(apdu))
            }
            None => Ok(slot.card.execute(apdu)),
        }
    }
}

impl CardTransport for InProcess {
    fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }

    fn location(&self) -> String {
        "in-process virtual PIV".into()
    }

    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn ApduPipe) -> Result<()>) -> Result<()> {
        work(self)
    }
}

fn open_on(slot: &Arc<Mutex<Slot>>) -> PivCarrier {
    {
        let mut s = slot.lock().expect("card lock");
        s.budget = None;
        s.seen = 0;
        s.pulled = false;
    }
    PivCarrier::open(Box::new(InProcess(Arc::clone(slot))), CarrierKind::Pcsc, options()).expect("open the card")
}

/// Arms the removal: the next `n` APDUs are answered, the one after fails.
fn remove_after(slot: &Arc<Mutex<Slot>>, n: usize) {
    let mut s = slot.lock().expect("card lock");
    s.budget = Some(n);
    s.seen = 0;
    s.pulled = false;
}

fn pin_tries(slot: &Arc<Mutex<Slot>>) -> u8 {
    slot.lock().expect("card lock").card.pin_tries_left()
}

/// Runs `operation` with the card removed at APDU 1, 2, ... until an attempt completes without
/// reaching the removal; checks each outcome and the card afterwards with `check`.
fn at_every_apdu<T: std::fmt::Debug>(
    slot: &Arc<Mutex<Slot>>,
    operation: impl Fn(PivCarrier) -> Result<T>,
    check: impl Fn(&Arc<Mutex<Slot>>, usize),
) -> (usize, T) {
    for n in 0..MAX_APDUS {
        let carrier = open_on(slot);
        remove_after(slot, n);
        let outcome = operation(carrier);
        let reached = slot.lock().expect("card lock").pulled;
        slot.lock().expect("card lock").card.power_cycle();
        match outcome {
            Err(Error::TokenRemoved) => assert!(reached, "TokenRemoved without a removal at n={n}"),
            Err(e) => panic!("removal at APDU {} gave {e:?}, not TokenRemoved", n + 1),
            Ok(_) if reached => panic!("the operation succeeded although the card was removed at APDU {}", n + 1),
            Ok(done) => return (n, done),
        }
        check(slot, n);
    }
    panic!("the operation never completed within {MAX_APDUS} APDUs");
}

#[test]
fn signature_interrupted_at_every_apdu_leaves_the_card_usable() {
    let slot = Arc::new(Mutex::new(Slot { card: card(), budget: None, seen: 0, pulled: false }));
    let key = keygen(&open_on(&slot), 0x9A, KeyAlgorithm::P256);
    let tries = pin_tries(&slot);
    let input = SignInput { digest: vec![0x42; 32], message: None };
    let (apdus, _) = at_every_apdu(
        &slot,
        |carrier| carrier.sign(&key.id, &Mechanism::EcdsaSha256, &input, &pin(PIN)),
        |slot, n| {
            assert_eq!(pin_tries(slot), tries, "a removal at APDU {} cost a PIN try", n + 1);
        },
    );
    assert!(apdus >= 3, "a signature takes at least SELECT, VERIFY, GENERAL AUTHENTICATE; took {apdus}");
    sign_and_verify(&open_on(&slot), &key, &Mechanism::EcdsaSha256, b"after every removal");
}

/// Every key the card lists must be the key in its slot: a certificate left beside a key it
/// does not belong to would make ukey report (and verifiers trust) a public key the card no
/// longer has. Signing with each listed key and verifying with the listed public key proves it.
fn listing_is_truthful(slot: &Arc<Mutex<Slot>>, n: usize) {
    let carrier = open_on(slot);
    let list = carrier.objects().unwrap_or_else(|e| panic!("listing after removal at APDU {}: {e}", n + 1));
    assert!(list.problems.is_empty(), "after removal at APDU {}: {:?}", n + 1, list.problems);
    for key in &list.keys {
        let digest = vec![0x5A; 32];
        let input = SignInput { digest: digest.clone(), message: None };
        let sig = carrier.sign(&key.id, &Mechanism::EcdsaSha256, &input, &pin(PIN)).unwrap_or_else(|e| {
            panic!("after removal at APDU {}, the listed key {} does not sign: {e}", n + 1, key.id)
        });
        let spki = key.public_key.as_ref().expect("listed keys carry their public key");
        verify_signature(spki, &Mechanism::EcdsaSha256, SignData::Digest(&digest), &sig).unwrap_or_else(|e| {
            panic!("after removal at APDU {}, slot {} lists a public key that is not its key: {e}", n + 1, key.id)
        });
    }
}

/// Key generation over an existing key, removed at every APDU, as the CLI and agent run it
/// (`placeholder`: a self-signed certificate stored after the key) and as bare PIV.
fn key_generation_interrupted_at_every_apdu(placeholder: bool) {
    let slot = Arc::new(Mutex::new(Slot { card: card(), budget: None, seen: 0, pulled: false }));
    // The old key is listed through its certificate (a placeholder here, as after `ukey keygen`;
    // a CA's certificate after `ukey cert import` sits there the same way).
    let old = keygen(&open_on(&slot).with_placeholder_certificates(), 0x9A, KeyAlgorithm::P256);
    assert!(old.certificate.is_some(), "the old key has a certificate");
    let tries = pin_tries(&slot);
    let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "new".into(), id: Some(ObjectId(vec![0x9A])) };
    let (apdus, new) = at_every_apdu(
        &slot,
        |carrier| {
            let carrier = if placeholder { carrier.with_placeholder_certificates() } else { carrier };
            carrier.generate_key(&request, &pin(PIN))
        },
        |slot, n| {
            assert_eq!(pin_tries(slot), tries, "a removal at APDU {} cost a PIN try", n + 1);
            listing_is_truthful(slot, n);
        },
    );
    assert!(apdus >= 4, "a key generation takes SELECT, VERIFY, management auth, GENERATE; took {apdus}");
    assert_ne!(new.public_key, old.public_key, "the completed generation replaced the key");
    let carrier = open_on(&slot);
    sign_and_verify(&carrier, &new, &Mechanism::EcdsaSha256, b"with the key generated after the removals");
    if placeholder {
        let listed = carrier.objects().expect("list");
        assert!(
            listed.keys.iter().any(|k| k.public_key == new.public_key),
            "the new key is listed through its placeholder certificate"
        );
    }
    listing_is_truthful(&slot, apdus);
}

#[test]
fn key_generation_interrupted_at_every_apdu_leaves_a_truthful_card() {
    key_generation_interrupted_at_every_apdu(false);
}

#[test]
fn key_generation_with_placeholder_interrupted_at_every_apdu_leaves_a_truthful_card() {
    key_generation_interrupted_at_every_apdu(true);
}

/// A certificate that no longer belongs to its slot's key (another program replaced the key
/// without the certificate, or an older ukey was cut short between the two) is found out on
/// the next signature and reported, never handed out as a signature no verifier will accept.
#[test]
fn stale_certificate_is_reported_on_next_use() {
    let slot = Arc::new(Mutex::new(Slot { card: card(), budget: None, seen: 0, pulled: false }));
    let key = keygen(&open_on(&slot).with_placeholder_certificates(), 0x9A, KeyAlgorithm::P256);
    slot.lock().expect("card lock").card.generate_key_directly(0x9A, ukey_vpiv::KeyAlgorithm::EccP256).expect("key");
    let carrier = open_on(&slot);
    let listed = carrier.objects().expect("list");
    assert!(listed.keys.iter().any(|k| k.public_key == key.public_key), "the stale certificate is still listed");
    let input = SignInput { digest: vec![0x42; 32], message: None };
    match carrier.sign(&key.id, &Mechanism::EcdsaSha256, &input, &pin(PIN)) {
        Err(Error::Device(why)) => assert!(why.contains("does not match the certificate"), "{why}"),
        other => panic!("signing with a key its certificate does not vouch for gave {other:?}"),
    }
}
