//! Shared plumbing of the PC/SC integration tests: lease a vpcd reader (cross-process lock,
//! pcscd started when needed), insert a virtual PIV card, open ukey's carrier on it.
#![allow(dead_code)]

use std::ffi::CString;
use std::time::Duration;

use sha2::{Digest, Sha256};
use ukey_api::crypto::prepare::SignData;
use ukey_api::crypto::verify::verify_signature;
use ukey_api::{Carrier, Credential, KeyAlgorithm, KeyGenRequest, KeyObject, Mechanism, ObjectId, Pin, SignInput};
use ukey_iso7816::piv::ManagementKey;
use ukey_iso7816::{PivCarrier, PivOptions};
use ukey_pcsc::{PcscContext, open_carrier};
use ukey_vpiv::harness::ReaderLease;
use ukey_vpiv::{CardConfig, VirtualPiv};

/// Longest wait for a free reader: other test binaries may hold both.
pub const LEASE_TIMEOUT: Duration = Duration::from_secs(300);

/// The fixture's factory PIN and PUK.
pub const PIN: &str = "123456";
pub const PUK: &str = "12345678";

pub fn lease() -> ReaderLease {
    ReaderLease::acquire_any(LEASE_TIMEOUT)
        .unwrap_or_else(|e| panic!("no vpcd reader: {e}; install pcscd and vsmartcard-vpcd (scripts/apt-packages.txt)"))
}

pub fn card() -> VirtualPiv {
    VirtualPiv::new(CardConfig::default()).expect("virtual card")
}

pub fn options() -> PivOptions {
    PivOptions { management_key: Some(ManagementKey::default_key()) }
}

pub fn open(lease: &ReaderLease) -> PivCarrier {
    open_with(lease, options())
}

pub fn open_with(lease: &ReaderLease, options: PivOptions) -> PivCarrier {
    let reader = CString::new(lease.reader_name()).expect("reader name");
    open_carrier(&PcscContext::new(), &reader, &options).unwrap_or_else(|e| panic!("open the PIV card: {e}"))
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
