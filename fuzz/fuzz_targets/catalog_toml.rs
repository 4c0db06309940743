//! Carrier catalog files (TOML in the unit's and the holder's catalog directories): loading
//! never panics, every problem is reported rather than thrown, and matching against the loaded
//! entries is safe for any ATR, USB id, module and reader name.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ukey_catalog::{Layer, load_text};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (catalog, problems) = load_text(text, Path::new("/fuzz/catalog.toml"), Layer::User);
    for problem in &problems {
        let _ = problem.to_string();
    }
    for entry in catalog.entries() {
        assert!(catalog.entry(&entry.id).is_some());
    }
    let _ = catalog.match_atr(&[0x3B, 0x8C, 0x80, 0x01]);
    let _ = catalog.match_atr(data);
    let _ = catalog.match_usb(0x1050, 0x0407);
    let _ = catalog.match_module(text);
    let _ = catalog.match_reader(text);
});
