//! The PIV name space (SP 800-73-4 Part 1 §3, SP 800-78-4 Table 6-2): key slots, the data
//! objects that hold their certificates, other data objects, algorithm identifiers.

use std::fmt;

use ukey_api::{Error, KeyAlgorithm, Result};

/// CHUID (Card Holder Unique Identifier) data object.
pub const TAG_CHUID: u32 = 0x5FC102;
/// Discovery object.
pub const TAG_DISCOVERY: u32 = 0x7E;
/// Key history object: how many retired keys have certificates on the card.
pub const TAG_KEY_HISTORY: u32 = 0x5FC10C;

/// PIV PIN key reference.
pub const REF_PIN: u8 = 0x80;
/// PUK (PIN unblocking key) reference.
pub const REF_PUK: u8 = 0x81;
/// Global PIN key reference.
pub const REF_GLOBAL_PIN: u8 = 0x00;
/// Card management (administrative) key reference.
pub const REF_MANAGEMENT: u8 = 0x9B;

/// Asymmetric algorithm identifiers (SP 800-78-4 Table 6-2).
pub mod alg {
    /// RSA 1024 (read only: no longer generated).
    pub const RSA_1024: u8 = 0x06;
    /// RSA 2048.
    pub const RSA_2048: u8 = 0x07;
    /// ECC P-256.
    pub const ECC_P256: u8 = 0x11;
    /// ECC P-384.
    pub const ECC_P384: u8 = 0x14;
    /// 3-key Triple DES (management key).
    pub const TDES: u8 = 0x03;
    /// AES-128 (management key).
    pub const AES_128: u8 = 0x08;
    /// AES-192 (management key).
    pub const AES_192: u8 = 0x0A;
    /// AES-256 (management key).
    pub const AES_256: u8 = 0x0C;
}

/// A PIV key slot that can hold a private key and its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(u8);

impl Slot {
    /// PIV Authentication.
    pub const AUTHENTICATION: Slot = Slot(0x9A);
    /// Digital Signature (PIN needed before every use).
    pub const SIGNATURE: Slot = Slot(0x9C);
    /// Key Management.
    pub const KEY_MANAGEMENT: Slot = Slot(0x9D);
    /// Card Authentication (usable without PIN).
    pub const CARD_AUTHENTICATION: Slot = Slot(0x9E);

    /// The four primary slots, in the order people expect them.
    pub const PRIMARY: [Slot; 4] = [Slot(0x9A), Slot(0x9C), Slot(0x9D), Slot(0x9E)];

    /// The slot with this key reference, if it is one that holds an asymmetric key.
    pub fn new(reference: u8) -> Option<Slot> {
        matches!(reference, 0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95).then_some(Slot(reference))
    }

    /// The slot named by a ukey object id (one byte, the key reference).
    pub fn from_id(id: &[u8]) -> Result<Slot> {
        match id {
            [b] => Slot::new(*b),
            _ => None,
        }
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "`{}` is not a PIV key slot; use 9a, 9c, 9d, 9e or a retired slot 82..95",
                hex::encode(id)
            ))
        })
    }

    /// The retired key-management slots 82..95, in order.
    pub fn retired() -> impl Iterator<Item = Slot> {
        (0x82..=0x95).map(Slot)
    }

    /// The key reference byte (also ukey's object id for this slot).
    pub fn reference(self) -> u8 {
        self.0
    }

    /// The tag of the data object holding this slot's certificate.
    pub fn certificate_tag(self) -> u32 {
        match self.0 {
            0x9A => 0x5FC105,
            0x9C => 0x5FC10A,
            0x9D => 0x5FC10B,
            0x9E => 0x5FC101,
            // Retired 82..95 map to 5FC10D..5FC120.
            r => 0x5FC10D + u32::from(r - 0x82),
        }
    }

    /// The name SP 800-73-4 gives the slot, used as the label of its key and certificate.
    pub fn label(self) -> String {
        match self.0 {
            0x9A => "PIV Authentication".into(),
            0x9C => "Digital Signature".into(),
            0x9D => "Key Management".into(),
            0x9E => "Card Authentication".into(),
            r => format!("Retired Key Management {}", r - 0x81),
        }
    }

    /// Whether the card asks for the PIN right before each use of this key (slot 9C, SP 800-73-4
    /// Part 1 §3.2.2: "PIN Always").
    pub fn always_authenticate(self) -> bool {
        self == Slot::SIGNATURE
    }

    /// Whether the key can be used without any PIN (Card Authentication).
    pub fn needs_pin(self) -> bool {
        self != Slot::CARD_AUTHENTICATION
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

/// The PIV algorithm identifier for a key algorithm ukey names.
pub fn algorithm_id(algorithm: KeyAlgorithm) -> Result<u8> {
    match algorithm {
        KeyAlgorithm::P256 => Ok(alg::ECC_P256),
        KeyAlgorithm::P384 => Ok(alg::ECC_P384),
        KeyAlgorithm::Rsa { bits: 2048 } => Ok(alg::RSA_2048),
        other => Err(Error::NotSupported(format!("PIV cards cannot hold {other} keys; use p256, p384 or rsa2048"))),
    }
}

/// The key algorithm a PIV algorithm identifier stands for.
pub fn key_algorithm(id: u8) -> Option<KeyAlgorithm> {
    match id {
        alg::ECC_P256 => Some(KeyAlgorithm::P256),
        alg::ECC_P384 => Some(KeyAlgorithm::P384),
        alg::RSA_2048 => Some(KeyAlgorithm::Rsa { bits: 2048 }),
        alg::RSA_1024 => Some(KeyAlgorithm::Rsa { bits: 1024 }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_tags() {
        assert_eq!(Slot::AUTHENTICATION.certificate_tag(), 0x5FC105);
        assert_eq!(Slot::SIGNATURE.certificate_tag(), 0x5FC10A);
        assert_eq!(Slot::KEY_MANAGEMENT.certificate_tag(), 0x5FC10B);
        assert_eq!(Slot::CARD_AUTHENTICATION.certificate_tag(), 0x5FC101);
        let retired: Vec<u32> = Slot::retired().map(Slot::certificate_tag).collect();
        assert_eq!(retired.len(), 20);
        assert_eq!(retired[0], 0x5FC10D);
        assert_eq!(retired[19], 0x5FC120);
    }

    #[test]
    fn slots_from_ids() {
        assert_eq!(Slot::from_id(&[0x9c]).unwrap(), Slot::SIGNATURE);
        assert!(Slot::from_id(&[0x9b]).is_err());
        assert!(Slot::from_id(&[0x9a, 0x00]).is_err());
        assert!(Slot::from_id(&[]).is_err());
        assert_eq!(Slot::new(0x95).unwrap().label(), "Retired Key Management 20");
    }
}
