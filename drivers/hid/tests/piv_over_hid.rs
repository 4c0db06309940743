//! The PIV application over HID, end to end: ukey-iso7816's `PivCarrier` on `HidTransport`
//! (CTAPHID framing, `MSG` messages) talking to ukey's virtual PIV card.
//!
//! TEST DOUBLE: the HID device is the crate's in-process token emulator
//! (`ukey_hid::emulator`), because this machine's kernel has no `/dev/uhid` and no virtual HID
//! device can be created here. It implements the same `HidDevice` trait as the hidapi device;
//! the framing, exchange, transport, PIV application and driver above it are the real code.

mod common;

use std::sync::Arc;

use common::*;
use ukey_api::crypto::{CarrierKeySigner, CertificateOptions, parse_name, self_signed};
use ukey_api::{Carrier, CarrierKind, CertificateImport, Driver, Error, KeyAlgorithm, Mechanism, ObjectId, PinRole};
use ukey_hid::HidDriver;
use ukey_hid::emulator::EmulatedBus;

fn self_signed_for(carrier: &dyn Carrier, key: &ukey_api::KeyObject, cn: &str) -> Vec<u8> {
    let credential = pin(PIN);
    let signer = CarrierKeySigner::new(carrier, key.id.clone(), key.public_key.clone().expect("spki"), &credential)
        .expect("signer");
    self_signed(&signer, &parse_name(&format!("CN={cn}")).expect("name"), &CertificateOptions::default())
        .expect("self-signed certificate")
}

#[test]
fn keygen_sign_verify_import_and_list_over_hid() {
    let piv = SharedPiv::new();
    let token = piv.token("emulated:hid-piv-1");
    let carrier = carrier(&token);
    assert_eq!(carrier.info().kind, CarrierKind::Hid);
    assert_eq!(carrier.info().serial, hex::encode_upper(piv.card().guid()));
    assert_eq!(carrier.info().location, "emulated:hid-piv-1");

    let cases = [
        (0x9A, KeyAlgorithm::P256, Mechanism::EcdsaSha256),
        (0x9C, KeyAlgorithm::P384, Mechanism::EcdsaSha384),
        (0x9D, KeyAlgorithm::Rsa { bits: 2048 }, Mechanism::RsaPkcs1Sha256),
    ];
    let mut fingerprints = Vec::new();
    for (slot, algorithm, mechanism) in &cases {
        let key = keygen(&carrier, *slot, *algorithm);
        assert_eq!(key.algorithm, *algorithm);
        sign_and_verify(&carrier, &key, mechanism, b"signed over HID");
        let der = self_signed_for(&carrier, &key, &format!("ukey over HID {algorithm}"));
        let stored = carrier
            .import_certificate(&CertificateImport { der, label: None, id: None }, &pin(PIN))
            .expect("import certificate");
        assert_eq!(stored.id, ObjectId(vec![*slot]));
        fingerprints.push(stored.info.sha256_fingerprint);
    }
    let rsa = carrier.objects().expect("objects").keys.into_iter().find(|k| k.id.0 == [0x9D]).expect("rsa key");
    sign_and_verify(&carrier, &rsa, &Mechanism::RsaPssSha256, b"pss over HID");
    assert!(!piv.card().pin_verified(), "the PIN must be logged out after each operation");

    // A second carrier on a new handle (as another program would open it) lists the same.
    let again = common::carrier(&token);
    assert_eq!(again.info().id, carrier.info().id);
    let list = again.objects().expect("objects");
    let mut listed: Vec<String> = list.certificates.iter().map(|c| c.info.sha256_fingerprint.clone()).collect();
    listed.sort();
    fingerprints.sort();
    assert_eq!(listed, fingerprints);
    assert!(list.problems.is_empty(), "{:?}", list.problems);
    let key_9c = list.keys.iter().find(|k| k.id.0 == [0x9C]).expect("9c key");
    sign_and_verify(&again, key_9c, &Mechanism::EcdsaSha384, b"from the listed key");

    // A certificate of a few kilobytes crossed in short APDUs: many MSG messages, several
    // continuation packets each.
    assert!(token.apdus() > 20, "{} APDUs", token.apdus());
    assert!(token.reports_in() > token.apdus(), "some APDUs took more than one report");
}

#[test]
fn pin_status_wrong_pin_and_unblock_over_hid() {
    let piv = SharedPiv::new();
    let token = piv.token("emulated:hid-piv-2");
    let carrier = carrier(&token);
    let state = carrier.pin_state().expect("pin state");
    assert_eq!(state.user.retries_left, Some(3));
    assert!(!state.user.locked);
    assert_eq!(piv.card().pin_tries_left(), 3, "reading the PIN state spends no try");

    let err = carrier.verify_pin(PinRole::User, &pin("999999")).unwrap_err();
    assert!(matches!(err, Error::WrongPin { retries_left: Some(2), .. }), "{err:?}");
    carrier.verify_pin(PinRole::User, &pin(PIN)).expect("right PIN");
    for _ in 0..3 {
        let _ = carrier.verify_pin(PinRole::User, &pin("999999"));
    }
    assert!(matches!(carrier.verify_pin(PinRole::User, &pin(PIN)), Err(Error::PinLocked { .. })));
    carrier.unblock_pin(&pin(PUK), &ukey_api::Pin::new("246810").unwrap()).expect("unblock");
    carrier.verify_pin(PinRole::User, &pin("246810")).expect("new PIN");
}

#[test]
fn driver_finds_the_catalog_hid_carrier_and_fills_its_identity() {
    let (catalog, _dir) = hid_catalog();
    let bus = EmulatedBus::new();
    let piv = SharedPiv::new();
    let token = piv.token("emulated:hid-piv-3");
    bus.plug(&token, VID, PID, Some("USB-SERIAL-1"));
    // A HID device the catalog does not know is not touched.
    let stranger = SharedPiv::new().token("emulated:unknown");
    bus.plug(&stranger, 0x1209, 0xFFFE, None);

    let driver = HidDriver::new(Arc::new(bus.clone()), catalog, options()).with_timeouts(quick());
    let carriers = driver.carriers().expect("carriers");
    assert_eq!(carriers.len(), 1);
    let info = carriers[0].info();
    assert_eq!(info.kind, CarrierKind::Hid);
    assert_eq!(info.catalog_entry.as_deref(), Some(ENTRY));
    assert_eq!(info.manufacturer, "ukey tests");
    assert_eq!(info.model, "HID PIV token");
    assert_eq!(info.usb, Some(ukey_api::identity::UsbId { vendor: VID, product: PID }));
    assert_eq!(info.atr, None);
    assert_eq!(info.serial, hex::encode_upper(piv.card().guid()), "the CHUID serial wins over USB's");
    assert_eq!(stranger.apdus(), 0);
    let key = keygen(carriers[0].as_ref(), 0x9A, KeyAlgorithm::P256);
    sign_and_verify(carriers[0].as_ref(), &key, &Mechanism::EcdsaSha256, b"through the driver");

    let status = driver.status();
    assert!(status.iter().any(|s| s.ok && s.message.contains("1 known")), "{status:?}");
}
