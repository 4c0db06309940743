//! CMS SignedData (PKCS#7) given to `ukey verify`: attached or detached, every certificate,
//! signer info and attribute inside comes from the sender. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_api::crypto::verify_cms;

fuzz_target!(|data: &[u8]| {
    let _ = verify_cms(data, None, None);
    let _ = verify_cms(data, Some(b"detached content"), Some(b"1234567812345678"));
});
