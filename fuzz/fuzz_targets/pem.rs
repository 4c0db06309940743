//! PEM text (certificate bundles, requests, keys as other programs write them): block splitting
//! never panics, and a block ukey writes reads back to the same DER.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_api::crypto::pem;

fuzz_target!(|data: &[u8]| {
    let _ = pem::is_pem(data);
    let _ = pem::pem_blocks(data);
    let _ = pem::der_from_pem_or_der(data, "CERTIFICATE REQUEST");
    if let Ok(certs) = pem::certificates_from_pem_or_der(data) {
        assert!(!certs.is_empty());
    }
    if let Ok(text) = pem::certificate_pem(data) {
        let blocks = pem::pem_blocks(text.as_bytes()).expect("PEM ukey writes must read back");
        assert_eq!(blocks, vec![("CERTIFICATE".to_string(), data.to_vec())]);
    }
});
