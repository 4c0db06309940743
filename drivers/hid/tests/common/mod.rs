//! Shared plumbing of the HID tests: the virtual PIV card (`ukey-vpiv`) behind the in-process
//! HID token emulator, a catalog with a HID carrier entry, and PIV helpers.
//!
//! The emulator stands in for a real device only because this machine's kernel has no
//! `/dev/uhid` (no virtual HID device can be created); it sits behind the same `HidDevice` trait
//! as hidapi's devices, so everything above that trait is the production code.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use ukey_api::crypto::prepare::SignData;
use ukey_api::crypto::verify::verify_signature;
use ukey_api::{
    Carrier, CarrierKind, Credential, KeyAlgorithm, KeyGenRequest, KeyObject, Mechanism, ObjectId, Pin, SignInput,
};
use ukey_catalog::{Catalog, CatalogDirs};
use ukey_hid::emulator::VirtualHidToken;
use ukey_hid::{Framing, HidTransport, Timeouts};
use ukey_iso7816::piv::ManagementKey;
use ukey_iso7816::{PivCarrier, PivOptions};
use ukey_vpiv::{CardConfig, VirtualPiv};

/// The card's factory PIN and PUK.
pub const PIN: &str = "123456";
pub const PUK: &str = "12345678";
/// USB ids of the test catalog's HID carrier (pid.codes test ids).
pub const VID: u16 = 0x1209;
pub const PID: u16 = 0x000C;
/// Catalog id of the test HID carrier.
pub const ENTRY: &str = "test-hid-piv";

/// A virtual PIV card shared between the emulated token and the test (to inspect its state).
#[derive(Clone)]
pub struct SharedPiv(Arc<Mutex<VirtualPiv>>);

impl SharedPiv {
    pub fn new() -> Self {
        SharedPiv(Arc::new(Mutex::new(VirtualPiv::new(CardConfig::default()).expect("virtual card"))))
    }

    pub fn card(&self) -> MutexGuard<'_, VirtualPiv> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An emulated HID token at `path` running this card.
    pub fn token(&self, path: &str) -> VirtualHidToken {
        let card = self.0.clone();
        VirtualHidToken::new(path, move |apdu: &[u8]| card.lock().unwrap_or_else(PoisonError::into_inner).execute(apdu))
    }
}

/// Short timeouts: the emulated token answers at once, so anything slower is a failure.
pub fn quick() -> Timeouts {
    Timeouts { idle: Duration::from_millis(300), total: Duration::from_secs(5), lock: Duration::from_secs(30) }
}

pub fn transport(token: &VirtualHidToken) -> HidTransport {
    HidTransport::new(Box::new(token.open()), Framing::CtaphidMsg, quick())
}

pub fn options() -> PivOptions {
    PivOptions { management_key: Some(ManagementKey::default_key()) }
}

/// The PIV carrier over the emulated token.
pub fn carrier(token: &VirtualHidToken) -> PivCarrier {
    PivCarrier::open(Box::new(transport(token)), CarrierKind::Hid, options())
        .unwrap_or_else(|e| panic!("open the PIV application over HID: {e}"))
}

pub fn pin(text: &str) -> Credential {
    Credential::Pin(Pin::new(text).expect("pin"))
}

pub fn keygen(carrier: &dyn Carrier, slot: u8, algorithm: KeyAlgorithm) -> KeyObject {
    let request = KeyGenRequest { algorithm, label: "test".into(), id: Some(ObjectId(vec![slot])) };
    carrier.generate_key(&request, &pin(PIN)).unwrap_or_else(|e| panic!("keygen {algorithm} in {slot:02x}: {e}"))
}

/// Signs `message` with the key and checks the signature with ukey's verifier.
pub fn sign_and_verify(carrier: &dyn Carrier, key: &KeyObject, mechanism: &Mechanism, message: &[u8]) -> Vec<u8> {
    let digest = match mechanism.hash() {
        ukey_api::HashAlg::Sha384 => sha2::Sha384::digest(message).to_vec(),
        _ => Sha256::digest(message).to_vec(),
    };
    let input = SignInput { digest, message: Some(message.to_vec()) };
    let sig = carrier.sign(&key.id, mechanism, &input, &pin(PIN)).unwrap_or_else(|e| panic!("sign: {e}"));
    let spki = key.public_key.as_ref().expect("public key");
    verify_signature(spki, mechanism, SignData::Message(message), &sig)
        .unwrap_or_else(|e| panic!("{mechanism} signature from slot {} does not verify: {e}", key.id));
    sig
}

/// A catalog with one HID carrier entry ([`ENTRY`], [`VID`]:[`PID`], CTAPHID framing, PIV),
/// written to a temporary system directory (kept alive by the returned guard).
pub fn hid_catalog() -> (Arc<Catalog>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cat: PathBuf = dir.path().join("catalog.d");
    std::fs::create_dir_all(&cat).expect("catalog dir");
    std::fs::write(
        cat.join("test-hid.toml"),
        format!(
            r#"
[[carrier]]
id = "{ENTRY}"
manufacturer = "ukey tests"
model = "HID PIV token"
interface = "hid"
applications = ["piv"]
usb = [{{ vendor = 0x{VID:04x}, product = 0x{PID:04x} }}]
hid_framing = "ctaphid-msg"
sources = ["ukey drivers/hid tests"]

[carrier.compliance]
compliant = false
reason = "test carrier"
"#
        ),
    )
    .expect("write catalog");
    let (catalog, problems) = ukey_catalog::load(&CatalogDirs::new(Some(cat), None));
    let ours: Vec<String> = problems.iter().map(|p| p.to_string()).filter(|p| p.contains("test-hid")).collect();
    assert!(ours.is_empty(), "{ours:?}");
    assert!(catalog.entry(ENTRY).is_some(), "the test entry loads");
    (Arc::new(catalog), dir)
}
