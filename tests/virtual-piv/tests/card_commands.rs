//! The card logic driven directly with APDUs (no PC/SC): SELECT, APDU framing, response
//! chaining, command chaining, GET DATA and PUT DATA, with their error status words.

mod support;

use support::*;
use ukey_vpiv::mgmt::MgmtAlgorithm;
use ukey_vpiv::tlv;
use ukey_vpiv::{ShortLePolicy, objects};

#[test]
fn select_answers_the_application_property_template() {
    let mut card = new_card();
    let (resp, sw) = send(&mut card, 0, 0xA4, 0x04, 0x00, &AID, Some(256));
    assert_eq!(sw, 0x9000);
    let apt = tlv::find(&resp, 0x61).unwrap().expect("61 template");
    assert_eq!(tlv::find(apt, 0x4F).unwrap(), Some(&AID[5..]));
    let authority = tlv::find(apt, 0x79).unwrap().expect("79 coexistent tag allocation authority");
    assert_eq!(tlv::find(authority, 0x4F).unwrap(), Some(&AID[..5]));
    let algs = tlv::find(apt, 0xAC).unwrap().expect("AC algorithms");
    let ids: Vec<u8> = tlv::read_all(algs).unwrap().iter().filter(|t| t.tag == 0x80).map(|t| t.value[0]).collect();
    assert_eq!(ids, vec![0x03, 0x07, 0x11, 0x14]);
}

#[test]
fn select_accepts_the_aid_without_version_and_the_rid_alone() {
    for len in [5, 9, 11] {
        let mut card = new_card();
        let (_, sw) = send(&mut card, 0, 0xA4, 0x04, 0x00, &AID[..len], Some(256));
        assert_eq!(sw, 0x9000, "AID prefix of {len} bytes");
    }
}

#[test]
fn select_of_another_application_is_not_found_and_keeps_the_selection() {
    let mut card = selected_card();
    let (_, sw) = send(&mut card, 0, 0xA4, 0x04, 0x00, &[0xD2, 0x76, 0x00, 0x01, 0x24, 0x01], Some(256));
    assert_eq!(sw, 0x6A82);
    let (_, sw) = get_data(&mut card, &[0x7E]);
    assert_eq!(sw, 0x9000, "PIV stays selected");
}

#[test]
fn select_with_wrong_p1_is_6a86() {
    let mut card = new_card();
    assert_eq!(send(&mut card, 0, 0xA4, 0x00, 0x00, &AID, Some(256)).1, 0x6A86);
}

#[test]
fn commands_before_select_are_not_routed() {
    let mut card = new_card();
    assert_eq!(get_data(&mut card, &[0x7E]).1, 0x6D00);
    card.default_selected = true;
    card.power_cycle();
    assert_eq!(get_data(&mut card, &[0x7E]).1, 0x9000, "PIV as default application");
}

#[test]
fn unknown_instruction_class_and_malformed_apdus() {
    let mut card = selected_card();
    assert_eq!(send(&mut card, 0, 0x0E, 0, 0, &[], None).1, 0x6D00);
    assert_eq!(send(&mut card, 0x80, 0xCB, 0x3F, 0xFF, &[0x5C, 0x01, 0x7E], None).1, 0x6E00);
    assert_eq!(split(card.execute(&[0x00, 0xCB, 0x3F])).1, 0x6700, "3-byte APDU");
    assert_eq!(split(card.execute(&[0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x01])).1, 0x6700, "Lc longer than data");
    assert_eq!(split(card.execute(&[0x00, 0xCB, 0x3F, 0xFF, 0x00, 0x00])).1, 0x6700, "truncated extended length");
}

#[test]
fn extended_apdus_are_understood() {
    let mut card = selected_card();
    // Extended Lc and Le: 00 CB 3F FF 00 00 03 5C 01 7E 00 00
    let raw = [0x00, 0xCB, 0x3F, 0xFF, 0x00, 0x00, 0x03, 0x5C, 0x01, 0x7E, 0x00, 0x00];
    let (resp, sw) = split(card.execute(&raw));
    assert_eq!(sw, 0x9000);
    assert_eq!(resp, objects::discovery());
}

#[test]
fn discovery_object_names_the_aid_and_the_pin_policy() {
    let mut card = selected_card();
    let (resp, sw) = get_data(&mut card, &[0x7E]);
    assert_eq!(sw, 0x9000);
    let inner = tlv::find(&resp, 0x7E).unwrap().unwrap();
    assert_eq!(tlv::find(inner, 0x4F).unwrap(), Some(&AID[..]));
    assert_eq!(tlv::find(inner, 0x5F2F).unwrap(), Some(&[0x40, 0x00][..]));
}

#[test]
fn chuid_carries_the_guid_and_a_non_federal_fasc_n() {
    let mut card = selected_card();
    let guid = card.guid();
    let (resp, sw) = get_data(&mut card, &[0x5F, 0xC1, 0x02]);
    assert_eq!(sw, 0x9000);
    let chuid = tlv::find(&resp, 0x53).unwrap().unwrap();
    assert_eq!(tlv::find(chuid, 0x34).unwrap(), Some(&guid[..]));
    let fasc_n = tlv::find(chuid, 0x30).unwrap().unwrap();
    assert_eq!(fasc_n.len(), 25);
    // Start sentinel 11010 then "9" = 10011: D4 E7 ... (agency code 9999).
    assert_eq!(&fasc_n[..2], &[0xD4, 0xE7]);
}

#[test]
fn ccc_is_present_and_absent_objects_are_6a82() {
    let mut card = selected_card();
    let (resp, sw) = get_data(&mut card, &[0x5F, 0xC1, 0x07]);
    assert_eq!(sw, 0x9000);
    let ccc = tlv::find(&resp, 0x53).unwrap().unwrap();
    assert_eq!(tlv::find(ccc, 0xF5).unwrap(), Some(&[0x10][..]));
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x05]).1, 0x6A82, "no certificate in 9A yet");
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x0C]).1, 0x6A82, "no key history");
    assert_eq!(get_data(&mut card, &[0x5F, 0xC2, 0x01]).1, 0x6A82, "not a PIV object");
}

#[test]
fn get_data_errors() {
    let mut card = selected_card();
    assert_eq!(send(&mut card, 0, 0xCB, 0x3F, 0x00, &[0x5C, 0x01, 0x7E], Some(256)).1, 0x6A86);
    assert_eq!(send(&mut card, 0, 0xCB, 0x3F, 0xFF, &[0x5D, 0x01, 0x7E], Some(256)).1, 0x6A80, "not a tag list");
    assert_eq!(send(&mut card, 0, 0xCB, 0x3F, 0xFF, &[0x5C, 0x05, 0x7E], Some(256)).1, 0x6A80, "truncated TLV");
    assert_eq!(send(&mut card, 0, 0xCB, 0x3F, 0xFF, &[0x5C, 0x00], Some(256)).1, 0x6A80, "empty tag");
}

#[test]
fn pin_protected_objects_need_the_pin() {
    let mut card = selected_card();
    assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Tdes, &DEFAULT_MGMT), 0x9000);
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x09], b"printed"), 0x9000);
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x09]).1, 0x6982);
    assert_eq!(verify(&mut card, b"123456"), 0x9000);
    let (resp, sw) = get_data(&mut card, &[0x5F, 0xC1, 0x09]);
    assert_eq!(sw, 0x9000);
    assert_eq!(tlv::find(&resp, 0x53).unwrap(), Some(&b"printed"[..]));
}

#[test]
fn put_data_needs_the_management_key_and_stores_certificates() {
    let mut card = selected_card();
    let cert = vec![0x30; 1500];
    let mut content = tlv::encode(0x70, &cert);
    content.extend(tlv::encode(0x71, &[0x00]));
    content.extend(tlv::encode(0xFE, &[]));
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x05], &content), 0x6982);
    assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Tdes, &DEFAULT_MGMT), 0x9000);
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x05], &content), 0x9000);
    // Retired slot 95 is 5FC120.
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x20], &content), 0x9000);
    for tag in [[0x5F, 0xC1, 0x05], [0x5F, 0xC1, 0x20]] {
        let (resp, sw) = get_data(&mut card, &tag);
        assert_eq!(sw, 0x9000);
        let object = tlv::find(&resp, 0x53).unwrap().unwrap();
        assert_eq!(tlv::find(object, 0x70).unwrap(), Some(&cert[..]));
    }
    // An empty 53 deletes the object.
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x05], &[]), 0x9000);
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x05]).1, 0x6A82);
}

#[test]
fn put_data_errors() {
    let mut card = selected_card();
    assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Tdes, &DEFAULT_MGMT), 0x9000);
    assert_eq!(put_data(&mut card, &[0x5F, 0xC2, 0x01], b"x"), 0x6A80, "unknown object");
    assert_eq!(send(&mut card, 0, 0xDB, 0x3F, 0xFF, &[0x53, 0x01, 0x00], None).1, 0x6A80, "no tag list");
    assert_eq!(send(&mut card, 0, 0xDB, 0x3F, 0x00, &[0x5C, 0x01, 0x7E, 0x53, 0x00], None).1, 0x6A86);
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x05], &vec![0; 20_000]), 0x6A84, "too large");
}

#[test]
fn long_answers_to_short_commands_come_in_pieces_with_61xx() {
    let mut card = selected_card();
    assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Tdes, &DEFAULT_MGMT), 0x9000);
    let content: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x0A], &content), 0x9000);
    let (first, sw) = send(&mut card, 0, 0xCB, 0x3F, 0xFF, &tlv::encode(0x5C, &[0x5F, 0xC1, 0x0A]), Some(256));
    assert_eq!(first.len(), 256);
    assert_eq!(sw, 0x6100, "61 00: 256 or more bytes remain");
    let (second, sw) = send(&mut card, 0, 0xC0, 0, 0, &[], Some(256));
    assert_eq!(second.len(), 256);
    assert_eq!(sw, 0x6100 | (704 - 512), "61xx with the exact remainder");
    let (third, sw) = send(&mut card, 0, 0xC0, 0, 0, &[], Some(256));
    assert_eq!(sw, 0x9000);
    let mut all = first;
    all.extend(second);
    all.extend(third);
    assert_eq!(all, tlv::encode(0x53, &content));
    // Another command in between drops the rest.
    assert_eq!(send(&mut card, 0, 0xC0, 0, 0, &[], Some(256)).1, 0x6985);
}

#[test]
fn extended_le_gets_a_long_answer_at_once() {
    let mut card = selected_card();
    assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Tdes, &DEFAULT_MGMT), 0x9000);
    let content = vec![0xAB; 3000];
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x0B], &content), 0x9000);
    let (resp, sw) = send(&mut card, 0, 0xCB, 0x3F, 0xFF, &tlv::encode(0x5C, &[0x5F, 0xC1, 0x0B]), Some(65536));
    assert_eq!(sw, 0x9000);
    assert_eq!(resp, tlv::encode(0x53, &content));
}

#[test]
fn a_small_short_le_gets_the_first_bytes_then_61xx_or_6cxx_by_policy() {
    let mut card = selected_card();
    let request = tlv::encode(0x5C, &[0x5F, 0xC1, 0x02]);
    let (_, full_sw) = get_data(&mut card, &[0x5F, 0xC1, 0x02]);
    assert_eq!(full_sw, 0x9000);
    let full_len = get_data(&mut card, &[0x5F, 0xC1, 0x02]).0.len();
    let (head, sw) = send(&mut card, 0, 0xCB, 0x3F, 0xFF, &request, Some(8));
    assert_eq!(head.len(), 8);
    assert_eq!(sw, 0x6100 | (full_len - 8) as u16);
    card.short_le_policy = ShortLePolicy::WrongLe6Cxx;
    let (head, sw) = send(&mut card, 0, 0xCB, 0x3F, 0xFF, &request, Some(8));
    assert!(head.is_empty());
    assert_eq!(sw, 0x6C00 | full_len as u16);
    let (all, sw) = send(&mut card, 0, 0xCB, 0x3F, 0xFF, &request, Some(full_len));
    assert_eq!(sw, 0x9000);
    assert_eq!(all.len(), full_len);
}

#[test]
fn an_interrupted_chain_is_6883() {
    let mut card = selected_card();
    assert_eq!(send(&mut card, 0x10, 0xDB, 0x3F, 0xFF, &[0x5C, 0x03], None).1, 0x9000);
    assert_eq!(send(&mut card, 0x00, 0xCB, 0x3F, 0xFF, &[0x5C, 0x01, 0x7E], Some(256)).1, 0x6883);
    assert_eq!(get_data(&mut card, &[0x7E]).1, 0x9000, "the next command works again");
}

#[test]
fn get_response_without_pending_data_is_6985() {
    let mut card = selected_card();
    assert_eq!(send(&mut card, 0, 0xC0, 0, 0, &[], Some(256)).1, 0x6985);
    assert_eq!(send(&mut card, 0, 0xC0, 1, 0, &[], Some(256)).1, 0x6A86);
}
