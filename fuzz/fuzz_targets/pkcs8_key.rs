//! Private key files imported into the soft token (PKCS#8 DER or PEM, as OpenSSL writes them):
//! parsing never panics; a key that parses re-exports to PKCS#8 that parses to the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_api::crypto::SoftwareKey;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = SoftwareKey::from_pkcs8(data) else { return };
    let der = key.to_pkcs8_der().expect("a parsed key exports");
    let der: &[u8] = &der;
    let again = SoftwareKey::from_pkcs8_der(der).expect("an exported key parses");
    assert_eq!(again.algorithm(), key.algorithm());
    assert_eq!(again.public_key_spki(), key.public_key_spki());
});
