//! Soft-token files (UKEY-SOFT-TOKEN header + JSON body) as found on disk after crashes, bit rot
//! or tampering: decoding never panics and refuses damage with an error; a file that decodes
//! re-encodes to one that decodes to the same token. The fuzz body is also tried under a correct
//! checksum header, so the JSON and the semantic checks behind the checksum are reached.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use ukey_soft::format;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/fuzz/token.json");
    let _ = format::decode(path, data);
    // The checksum covers the body without the final newline `encode` appends.
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut file = format!("UKEY-SOFT-TOKEN 1 sha256:{}\n", hex::encode(Sha256::digest(body))).into_bytes();
    file.extend_from_slice(data);
    let Ok(state) = format::decode(path, &file) else { return };
    let written = format::encode(&state).expect("a decoded token must encode");
    let again = format::decode(path, &written).expect("an encoded token must decode");
    assert_eq!(again, state);
});
