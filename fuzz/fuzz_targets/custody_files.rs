//! Custody files (src/policy): the machine's `policy.toml`, the registry's per-carrier records
//! (TOML, written by the helpdesk) and custody tags read from carriers (signed JSON). Parsing
//! refuses damage with an error, never a panic; a record or policy ukey writes reads back to the
//! same value, and validation and the account check are total.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey::policy::record::{CustodyRecord, Right};
use ukey::policy::settings::PolicySettings;
use ukey::policy::tag::{Anchors, TagCheck};

fuzz_target!(|data: &[u8]| {
    // A tag as a carrier returns it: with no trusted anchor it is never valid.
    let anchors = Anchors::from_certificates(Vec::new());
    assert!(matches!(anchors.check(data, "0001"), TagCheck::Invalid { .. }));

    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Right::parse_list(text);

    if let Ok(record) = toml::from_str::<CustodyRecord>(text) {
        let _ = record.validate();
        let _ = record.holder_label();
        let _ = record.allows_account(Some("alice"), 1000);
        let written = toml::to_string(&record).expect("a record read encodes");
        let back: CustodyRecord = toml::from_str(&written).expect("a record ukey writes reads back");
        assert_eq!(back, record);
    }

    if let Ok(settings) = toml::from_str::<PolicySettings>(text) {
        let _ = settings.mode.as_str();
        let written = toml::to_string(&settings).expect("a policy read encodes");
        let back: PolicySettings = toml::from_str(&written).expect("a policy ukey writes reads back");
        assert_eq!(back, settings);
    }
});
