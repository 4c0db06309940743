//! EC/SM2 signatures in DER (from files, PKCS#11 modules, cards) and raw r‖s: DER → raw → DER is
//! the identity on accepted DER (DER is canonical), raw → DER → raw is the identity on accepted
//! raw values, and `signature_to_raw` agrees with both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_api::KeyAlgorithm;
use ukey_api::crypto::{der_to_raw, raw_to_der, signature_to_raw};

fuzz_target!(|data: &[u8]| {
    for field_len in [32usize, 48, 0, 1, 66] {
        if let Ok(raw) = der_to_raw(data, field_len) {
            assert_eq!(raw.len(), 2 * field_len);
            let der = raw_to_der(&raw, field_len).expect("raw from DER must encode");
            assert_eq!(der, data, "DER → raw → DER changed the bytes");
        }
        if let Ok(der) = raw_to_der(data, field_len) {
            let raw = der_to_raw(&der, field_len).expect("DER from raw must decode");
            assert_eq!(raw, data, "raw → DER → raw changed the value");
        }
    }
    for alg in [KeyAlgorithm::P256, KeyAlgorithm::P384, KeyAlgorithm::Sm2, KeyAlgorithm::Rsa { bits: 2048 }] {
        if let Ok(raw) = signature_to_raw(alg, data) {
            if let Some(n) = alg.ec_field_len() {
                assert_eq!(raw.len(), 2 * n);
            } else {
                assert_eq!(raw, data);
            }
        }
    }
});
