//! What a browser (or anything on the loopback) puts in `Origin` and `Host` headers on a
//! WebSocket upgrade: parsing never panics, an origin's canonical form parses to itself, and a
//! Host accepted as ours is a loopback name with our port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey::agent::webguard::{OriginRules, WebOrigin, check_host};

const PORT: u16 = 17_443;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(origin) = WebOrigin::parse(text) {
        let shown = origin.to_string();
        let again = WebOrigin::parse(&shown).unwrap_or_else(|e| panic!("{shown} does not parse back: {e}"));
        assert_eq!(again, origin);
        assert_eq!(again.to_string(), shown);
    }
    if check_host(Some(text), PORT).is_ok() {
        assert!(text.trim().ends_with(&format!(":{PORT}")), "{text}");
    }
    let rules = OriginRules::new(PORT, &["http://localhost:3000".to_string()], false).expect("valid rules");
    let _ = rules.admit(Some(text));
});
