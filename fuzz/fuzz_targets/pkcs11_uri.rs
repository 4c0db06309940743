//! PKCS#11 URIs (RFC 7512) from command lines, configuration and JSON-RPC requests: parsing never
//! panics, and format ∘ parse is the identity on what parses (a URI ukey prints names the same
//! objects when read back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_api::Pkcs11Uri;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for candidate in [text.to_string(), format!("pkcs11:{text}")] {
        let Ok(uri) = Pkcs11Uri::parse(&candidate) else { continue };
        let printed = uri.to_string();
        let again = Pkcs11Uri::parse(&printed).unwrap_or_else(|e| panic!("{printed} does not parse back: {e}"));
        assert_eq!(again, uri, "format ∘ parse changed the URI: {candidate} → {printed}");
        assert_eq!(again.to_string(), printed);
    }
});
