//! Certificates from carriers, files and other programs (X.509 DER or PEM), public keys and
//! distinguished names inside them: parsing never panics, and what parses is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use ukey_api::CertificateInfo;
use ukey_api::crypto::{name, public_key_from_pem_or_der, spki_algorithm};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = CertificateInfo::parse(data) {
        let _ = info.subject_cn();
        assert_eq!(info.sha256_fingerprint.len(), 64);
        if data.first() == Some(&0x30) {
            assert_eq!(info.sha256_fingerprint, hex::encode(Sha256::digest(data)));
        }
        if info.key_algorithm.is_some() {
            assert_eq!(spki_algorithm(&info.public_key).ok(), info.key_algorithm);
        }
    }
    let _ = spki_algorithm(data);
    if let Ok(spki) = public_key_from_pem_or_der(data) {
        let _ = spki_algorithm(&spki);
    }
    if let Ok(parsed) = name::name_from_der(data) {
        let _ = parsed.to_string();
    }
});
