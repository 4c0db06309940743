//! Answers-to-reset (the first bytes a card sends) and the catalog's ATR patterns: never a panic,
//! the historical bytes lie inside the ATR, and a pattern matches the value it was built from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_catalog::AtrPattern;
use ukey_iso7816::atr;

fuzz_target!(|data: &[u8]| {
    if let Some(hist) = atr::historical_bytes(data) {
        assert!(hist.len() <= 15 && hist.len() <= data.len());
    }
    let _ = atr::extended_length_supported(data);

    let Ok(text) = std::str::from_utf8(data) else { return };
    let (value, mask) = text.split_once('/').unwrap_or((text, ""));
    for parsed in [AtrPattern::parse(text), AtrPattern::with_mask(value, mask)] {
        let Ok(pattern) = parsed else { continue };
        assert_eq!(pattern.value().len(), pattern.mask().len());
        let _ = pattern.specificity();
        // The value with its masked bits is what the pattern describes.
        assert!(pattern.matches(pattern.value()), "a pattern must match its own value");
        let shown = pattern.to_string();
        // Display writes pcsc-tools text, or `value/mask` when the mask is not whole nibbles.
        let again = match shown.split_once('/') {
            Some((v, m)) => AtrPattern::with_mask(v, m),
            None => AtrPattern::parse(&shown),
        };
        assert_eq!(again.as_ref(), Ok(&pattern), "{shown} does not parse back");
    }
});
