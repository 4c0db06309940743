//! PIV data objects as a card returns them (SP 800-73-4): certificate containers (plain and
//! gzip-compressed, bounded inflation), CHUID, discovery, GENERATE answers, ECDSA signatures.
//! Never a panic; a certificate container ukey writes decodes to the certificate it holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_iso7816::piv::chuid::{self, Chuid};
use ukey_iso7816::piv::{certificate, keys, signing};

fuzz_target!(|data: &[u8]| {
    if let Ok(der) = certificate::decode(data) {
        assert!(der.len() <= 64 * 1024, "inflated past the bound");
    }
    if !data.is_empty() {
        assert_eq!(certificate::decode(&certificate::encode(data)).ok().as_deref(), Some(data));
    }
    if let Ok(chuid) = Chuid::parse(data) {
        if let Some(serial) = chuid.serial() {
            assert!(serial.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    let _ = chuid::pin_policy(data);
    // GENERATE ASYMMETRIC KEY PAIR answers for each algorithm PIV names (and some it does not).
    for algorithm in [0x07, 0x11, 0x14, 0x06, 0x00, 0xFF] {
        if let Ok((_, spki)) = keys::spki_from_generate(algorithm, data) {
            assert!(ukey_api::crypto::spki_algorithm(&spki).is_ok(), "the SPKI built from a card answer must parse");
        }
    }
    for field_len in [32, 48, 0, 1] {
        if let Ok(raw) = signing::ecdsa_der_to_raw(data, field_len) {
            assert_eq!(raw.len(), 2 * field_len);
        }
    }
});
