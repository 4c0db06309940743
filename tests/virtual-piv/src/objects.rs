//! PIV data objects (SP 800-73-4 Part 1 §3.1–3.3, Table 3): which tags exist, who may read them,
//! and the objects a new card carries (CCC, CHUID with FASC-N and GUID, discovery object).

use std::collections::BTreeMap;

use crate::PIV_AID;
use crate::keys::KeyAlgorithm;
use crate::mgmt::MgmtAlgorithm;
use crate::tlv;

/// Card Capability Container.
pub const CCC: u32 = 0x5FC107;
/// Card Holder Unique Identifier.
pub const CHUID: u32 = 0x5FC102;
/// X.509 certificate for PIV authentication (slot 9A).
pub const CERT_9A: u32 = 0x5FC105;
/// X.509 certificate for digital signature (slot 9C).
pub const CERT_9C: u32 = 0x5FC10A;
/// X.509 certificate for key management (slot 9D).
pub const CERT_9D: u32 = 0x5FC10B;
/// X.509 certificate for card authentication (slot 9E).
pub const CERT_9E: u32 = 0x5FC101;
/// Key history object.
pub const KEY_HISTORY: u32 = 0x5FC10C;
/// Discovery object (read-only, answered as tag 7E itself).
pub const DISCOVERY: u32 = 0x7E;
/// Biometric information templates group template.
pub const BIT_GROUP: u32 = 0x7F61;

/// The certificate object of a key slot: 9A, 9C, 9D, 9E and the retired slots 82–95
/// (`5FC10D`..`5FC120`).
pub fn cert_tag_for_slot(slot: u8) -> Option<u32> {
    match slot {
        0x9A => Some(CERT_9A),
        0x9C => Some(CERT_9C),
        0x9D => Some(CERT_9D),
        0x9E => Some(CERT_9E),
        0x82..=0x95 => Some(0x5FC10D + u32::from(slot - 0x82)),
        _ => None,
    }
}

/// Whether `slot` is an asymmetric key reference of the PIV application.
pub fn is_key_slot(slot: u8) -> bool {
    matches!(slot, 0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95)
}

/// Whether `tag` names a data object this card can hold: the SP 800-73-4 containers
/// `5FC101`..`5FC123`, the BIT group template `7F61`, and the vendor range `5FFF00`..`5FFF15`
/// where YubiKey-style tools keep their administrative data.
pub fn is_known_object(tag: u32) -> bool {
    matches!(tag, 0x5FC101..=0x5FC123 | BIT_GROUP | 0x5FFF00..=0x5FFF15)
}

/// Whether reading `tag` needs the PIN (SP 800-73-4 Part 1 Table 3 "PIN" access rule):
/// fingerprints, facial image, printed information, iris images, pairing code.
pub fn read_needs_pin(tag: u32) -> bool {
    matches!(tag, 0x5FC103 | 0x5FC108 | 0x5FC109 | 0x5FC121 | 0x5FC123)
}

/// Largest object the card stores (a generous certificate with chain bits).
pub const MAX_OBJECT_LEN: usize = 16 * 1024;

/// The objects of a new card.
pub fn factory_objects(guid: &[u8; 16]) -> BTreeMap<u32, Vec<u8>> {
    let mut map = BTreeMap::new();
    map.insert(CHUID, chuid(guid));
    map.insert(CCC, ccc(guid));
    map
}

/// The CHUID content (Table 9): FASC-N `30` of a non-federal issuer (agency code 9999), GUID
/// `34`, expiration date `35`, an empty issuer signature `3E` and the error detection code `FE`.
pub fn chuid(guid: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::new();
    tlv::push(&mut out, 0x30, &fasc_n_non_federal());
    tlv::push(&mut out, 0x34, guid);
    tlv::push(&mut out, 0x35, b"20991231");
    tlv::push(&mut out, 0x3E, &[]);
    tlv::push(&mut out, 0xFE, &[]);
    out
}

/// The Card Capability Container (Table 8): card identifier with the GSC-RID, container and
/// grammar versions 2.1, data model 10 (PIV), the remaining mandatory tags empty.
pub fn ccc(guid: &[u8; 16]) -> Vec<u8> {
    let mut card_id = vec![0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
    card_id.extend_from_slice(&guid[..14]);
    let mut out = Vec::new();
    tlv::push(&mut out, 0xF0, &card_id);
    tlv::push(&mut out, 0xF1, &[0x21]);
    tlv::push(&mut out, 0xF2, &[0x21]);
    tlv::push(&mut out, 0xF3, &[]);
    tlv::push(&mut out, 0xF4, &[0x00]);
    tlv::push(&mut out, 0xF5, &[0x10]);
    tlv::push(&mut out, 0xF6, &[]);
    tlv::push(&mut out, 0xF7, &[]);
    tlv::push(&mut out, 0xFA, &[]);
    tlv::push(&mut out, 0xFB, &[]);
    tlv::push(&mut out, 0xFC, &[]);
    tlv::push(&mut out, 0xFD, &[]);
    tlv::push(&mut out, 0xFE, &[]);
    out
}

/// The discovery object `7E` (Table 18): the AID and the PIN usage policy `5F2F` = 40 00
/// (PIV application PIN only, no global PIN, no OCC).
pub fn discovery() -> Vec<u8> {
    let mut inner = Vec::new();
    tlv::push(&mut inner, 0x4F, &PIV_AID);
    tlv::push(&mut inner, 0x5F2F, &[0x40, 0x00]);
    tlv::encode(DISCOVERY, &inner)
}

/// The application property template `61` answered to SELECT (Part 2 §3.1.1, Table 3): AID
/// (PIX part), coexistent tag allocation authority, label, and the algorithms supported.
pub fn application_property_template(mgmt: MgmtAlgorithm) -> Vec<u8> {
    let mut inner = Vec::new();
    tlv::push(&mut inner, 0x4F, &PIV_AID[5..]);
    tlv::push(&mut inner, 0x79, &tlv::encode(0x4F, &PIV_AID[..5]));
    tlv::push(&mut inner, 0x50, b"ukey virtual PIV");
    let mut algs = Vec::new();
    let mut ids = vec![mgmt.id()];
    ids.extend([KeyAlgorithm::Rsa2048, KeyAlgorithm::EccP256, KeyAlgorithm::EccP384].map(KeyAlgorithm::id));
    for id in ids {
        tlv::push(&mut algs, 0x80, &[id]);
    }
    tlv::push(&mut algs, 0x06, &[0x00]);
    tlv::push(&mut inner, 0xAC, &algs);
    tlv::encode(0x61, &inner)
}

/// A FASC-N (TIG SCEPACS) for agency code 9999, which marks a non-federal card: hosts then take
/// the GUID as the card's identity. 40 characters of 4-bit BCD (LSB first) plus odd parity,
/// 200 bits in 25 bytes.
pub fn fasc_n_non_federal() -> [u8; 25] {
    const SS: u8 = 0x0B;
    const FS: u8 = 0x0D;
    const ES: u8 = 0x0F;
    let mut chars = vec![SS];
    let fields: [&[u8]; 5] = [b"9999", b"9999", b"999999", b"9", b"9"];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            chars.push(FS);
        }
        chars.extend(field.iter().map(|c| c - b'0'));
    }
    chars.push(FS);
    chars.extend(b"9999999999".iter().map(|c| c - b'0'));
    chars.extend([1, 9, 9, 9, 9, 1].iter().copied()); // organizational category, identifier, association
    chars.push(ES);
    let lrc = chars.iter().fold(0u8, |acc, c| acc ^ c);
    chars.push(lrc);
    let mut bits = Vec::with_capacity(200);
    for c in chars {
        let data = [c & 1, (c >> 1) & 1, (c >> 2) & 1, (c >> 3) & 1];
        let ones = data.iter().sum::<u8>();
        bits.extend_from_slice(&data);
        bits.push(if ones % 2 == 0 { 1 } else { 0 });
    }
    let mut out = [0u8; 25];
    for (i, bit) in bits.iter().take(200).enumerate() {
        out[i / 8] |= bit << (7 - (i % 8));
    }
    out
}
