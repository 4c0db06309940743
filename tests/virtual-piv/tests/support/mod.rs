//! Helpers for driving the card directly with APDUs in tests.
#![allow(dead_code)]

use ukey_vpiv::apdu;
use ukey_vpiv::mgmt::MgmtAlgorithm;
use ukey_vpiv::tlv;
use ukey_vpiv::{CardConfig, VirtualPiv};

pub const AID: [u8; 11] = ukey_vpiv::PIV_AID;
pub const DEFAULT_MGMT: [u8; 24] = ukey_vpiv::config::DEFAULT_MGMT_KEY;

/// Sends a command, returns (data, SW).
pub fn send(card: &mut VirtualPiv, cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], ne: Option<usize>) -> (Vec<u8>, u16) {
    let raw = apdu::build(cla, ins, p1, p2, data, ne);
    split(card.execute(&raw))
}

pub fn split(mut resp: Vec<u8>) -> (Vec<u8>, u16) {
    assert!(resp.len() >= 2, "response shorter than a status word");
    let sw = resp.split_off(resp.len() - 2);
    (resp, u16::from_be_bytes([sw[0], sw[1]]))
}

/// Sends a short command and follows 61xx with GET RESPONSE.
pub fn transmit(card: &mut VirtualPiv, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, u16) {
    let (mut out, mut sw) = send(card, 0, ins, p1, p2, data, Some(256));
    let mut rounds = 0;
    while sw >> 8 == 0x61 {
        rounds += 1;
        assert!(rounds < 100, "endless 61xx");
        let (more, next) = send(card, 0, 0xC0, 0, 0, &[], Some(256));
        out.extend(more);
        sw = next;
    }
    (out, sw)
}

pub fn new_card() -> VirtualPiv {
    VirtualPiv::new(CardConfig::default()).expect("default config is valid")
}

pub fn selected_card() -> VirtualPiv {
    let mut card = new_card();
    select(&mut card);
    card
}

pub fn select(card: &mut VirtualPiv) {
    let (_, sw) = send(card, 0, 0xA4, 0x04, 0x00, &AID, Some(256));
    assert_eq!(sw, 0x9000);
}

pub fn pin_block(pin: &[u8]) -> Vec<u8> {
    let mut out = pin.to_vec();
    out.resize(8, 0xFF);
    out
}

pub fn verify(card: &mut VirtualPiv, pin: &[u8]) -> u16 {
    send(card, 0, 0x20, 0x00, 0x80, &pin_block(pin), None).1
}

pub fn get_data(card: &mut VirtualPiv, tag: &[u8]) -> (Vec<u8>, u16) {
    transmit(card, 0xCB, 0x3F, 0xFF, &tlv::encode(0x5C, tag))
}

pub fn put_data(card: &mut VirtualPiv, tag: &[u8], content: &[u8]) -> u16 {
    let mut data = tlv::encode(0x5C, tag);
    data.extend(tlv::encode(0x53, content));
    send_chained(card, 0xDB, 0x3F, 0xFF, &data)
}

/// Sends long data with command chaining (255-byte pieces), then follows 61xx; returns the
/// answer to the last piece.
pub fn send_chained(card: &mut VirtualPiv, ins: u8, p1: u8, p2: u8, data: &[u8]) -> u16 {
    transmit_long(card, ins, p1, p2, data).1
}

/// Command chaining for the data plus GET RESPONSE for the answer.
pub fn transmit_long(card: &mut VirtualPiv, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, u16) {
    let pieces: Vec<&[u8]> = data.chunks(255).collect();
    let (last, first) = pieces.split_last().expect("data is never empty here");
    for (i, piece) in first.iter().enumerate() {
        let (_, sw) = send(card, 0x10, ins, p1, p2, piece, None);
        assert_eq!(sw, 0x9000, "chained piece {i}");
    }
    let (mut out, mut sw) = send(card, 0x00, ins, p1, p2, last, Some(256));
    let mut rounds = 0;
    while sw >> 8 == 0x61 {
        rounds += 1;
        assert!(rounds < 300, "endless 61xx");
        let (more, next) = send(card, 0, 0xC0, 0, 0, &[], Some(256));
        out.extend(more);
        sw = next;
    }
    (out, sw)
}

/// Mutual authentication with the management key; returns the final SW.
pub fn mgmt_auth(card: &mut VirtualPiv, alg: MgmtAlgorithm, key: &[u8]) -> u16 {
    let (resp, sw) = send(card, 0, 0x87, alg.id(), 0x9B, &tlv::encode(0x7C, &tlv::encode(0x80, &[])), Some(256));
    if sw != 0x9000 {
        return sw;
    }
    let inner = tlv::find(&resp, 0x7C).unwrap().unwrap();
    let encrypted = tlv::find(inner, 0x80).unwrap().unwrap();
    let witness = alg.decrypt_block(key, encrypted).unwrap();
    let challenge = vec![0x5A; alg.block_len()];
    let mut body = tlv::encode(0x80, &witness);
    body.extend(tlv::encode(0x81, &challenge));
    let (resp, sw) = send(card, 0, 0x87, alg.id(), 0x9B, &tlv::encode(0x7C, &body), Some(256));
    if sw != 0x9000 {
        return sw;
    }
    let inner = tlv::find(&resp, 0x7C).unwrap().unwrap();
    let response = tlv::find(inner, 0x82).unwrap().unwrap();
    assert_eq!(alg.decrypt_block(key, response).unwrap(), challenge, "card proved the wrong key");
    sw
}

pub fn generate(card: &mut VirtualPiv, slot: u8, alg: u8) -> (Vec<u8>, u16) {
    let control = tlv::encode(0xAC, &tlv::encode(0x80, &[alg]));
    transmit(card, 0x47, 0x00, slot, &control)
}

/// GENERAL AUTHENTICATE with a challenge; returns the 82 content.
pub fn sign(card: &mut VirtualPiv, alg: u8, slot: u8, input: &[u8]) -> (Vec<u8>, u16) {
    let mut body = tlv::encode(0x82, &[]);
    body.extend(tlv::encode(0x81, input));
    let data = tlv::encode(0x7C, &body);
    let (resp, sw) = transmit_long(card, 0x87, alg, slot, &data);
    if sw != 0x9000 {
        return (resp, sw);
    }
    let inner = tlv::find(&resp, 0x7C).unwrap().unwrap();
    (tlv::find(inner, 0x82).unwrap().unwrap().to_vec(), sw)
}
