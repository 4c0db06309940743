//! Distinguished names typed by people or sent by enrolment requests (`CN=Alice,O=Unit`):
//! parsing never panics, and what parses encodes to DER that reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_api::crypto::name;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = name::parse_name(text) {
        // What ukey prints (RFC 4514) is what people paste back: it must name the same subject.
        let printed = parsed.to_string();
        let again = name::parse_name(&printed).unwrap_or_else(|e| panic!("`{printed}` does not parse back: {e}"));
        assert_eq!(again, parsed, "`{text}` printed as `{printed}` parses to another name");
    }
    if let Ok(der) = name::parse_name_der(text) {
        name::name_from_der(&der).expect("a name ukey encoded must decode");
    }
});
