//! Certificate signing requests handed to `ukey csr verify` / enrolment (DER or PEM): verifying
//! never panics, whatever the algorithm or the SM2 distinguishing id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_api::crypto::verify_csr;

fuzz_target!(|data: &[u8]| {
    let _ = verify_csr(data, None);
    let _ = verify_csr(data, Some(b"1234567812345678"));
});
