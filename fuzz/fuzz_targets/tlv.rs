//! BER-TLV as cards send it (ukey_iso7816::tlv): parsing never panics, and every element parsed
//! re-encodes to bytes that parse back to the same element (encode ∘ parse is the identity on
//! what the parser accepts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_iso7816::tlv;

fuzz_target!(|data: &[u8]| {
    let _ = tlv::find(data, 0x53);
    let _ = tlv::require(data, 0x7F49);
    if let Ok((first, rest)) = tlv::parse_one(data) {
        assert!(rest.len() < data.len(), "parse_one consumed nothing");
        let _ = first.is_constructed();
        let _ = first.children();
    }
    let Ok(all) = tlv::parse_all(data) else { return };
    let mut again = Vec::new();
    for element in &all {
        tlv::encode(element.tag, element.value, &mut again);
    }
    let reparsed = tlv::parse_all(&again).expect("re-encoded TLVs must parse");
    assert_eq!(reparsed, all, "encode ∘ parse changed the elements");
    // The encoder writes the shortest length form, so a second round is byte-identical.
    let mut third = Vec::new();
    for element in &reparsed {
        tlv::encode(element.tag, element.value, &mut third);
    }
    assert_eq!(third, again);
});
