//! The card management key (key reference 9B, SP 800-73-4 Part 1 §3.5.1 and SP 800-78-4 Table 6):
//! one block cipher, used in ECB mode on single blocks for the witness/challenge exchanges of
//! GENERAL AUTHENTICATE.

use aes::{Aes128, Aes192, Aes256};
use cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::TdesEde3;
use serde::{Deserialize, Serialize};

use crate::status::Sw;

/// The algorithm of the management key, with its SP 800-78-4 algorithm identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MgmtAlgorithm {
    /// Three-key Triple DES (identifier 03), the factory default of most PIV cards.
    Tdes,
    /// AES-128 (identifier 08).
    Aes128,
    /// AES-192 (identifier 0A).
    Aes192,
    /// AES-256 (identifier 0C).
    Aes256,
}

impl MgmtAlgorithm {
    /// The algorithm identifier used as P1 of GENERAL AUTHENTICATE.
    pub fn id(self) -> u8 {
        match self {
            MgmtAlgorithm::Tdes => 0x03,
            MgmtAlgorithm::Aes128 => 0x08,
            MgmtAlgorithm::Aes192 => 0x0A,
            MgmtAlgorithm::Aes256 => 0x0C,
        }
    }

    /// The algorithm for an identifier, if the card supports it.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0x03 => Some(MgmtAlgorithm::Tdes),
            0x08 => Some(MgmtAlgorithm::Aes128),
            0x0A => Some(MgmtAlgorithm::Aes192),
            0x0C => Some(MgmtAlgorithm::Aes256),
            _ => None,
        }
    }

    /// Whether `id` names this algorithm as P1 of GENERAL AUTHENTICATE. SP 800-78-4 Table 6-2
    /// gives 3-key Triple DES two identifiers, '00' and '03'; OpenSC asks for random bytes with
    /// '00'.
    pub fn is_named_by(self, id: u8) -> bool {
        id == self.id() || (self == MgmtAlgorithm::Tdes && id == 0x00)
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            MgmtAlgorithm::Tdes => 24,
            MgmtAlgorithm::Aes128 => 16,
            MgmtAlgorithm::Aes192 => 24,
            MgmtAlgorithm::Aes256 => 32,
        }
    }

    /// Block length in bytes: the length of witnesses and challenges.
    pub fn block_len(self) -> usize {
        match self {
            MgmtAlgorithm::Tdes => 8,
            _ => 16,
        }
    }

    /// Encrypts one block with `key` (ECB, no padding). A block or key of the wrong length is
    /// `6A80`.
    pub fn encrypt_block(self, key: &[u8], block: &[u8]) -> Result<Vec<u8>, Sw> {
        self.apply(key, block, true)
    }

    /// Decrypts one block with `key`.
    pub fn decrypt_block(self, key: &[u8], block: &[u8]) -> Result<Vec<u8>, Sw> {
        self.apply(key, block, false)
    }

    fn apply(self, key: &[u8], block: &[u8], encrypt: bool) -> Result<Vec<u8>, Sw> {
        if key.len() != self.key_len() || block.len() != self.block_len() {
            return Err(Sw::WRONG_DATA);
        }
        match self {
            MgmtAlgorithm::Tdes => run::<TdesEde3>(key, block, encrypt),
            MgmtAlgorithm::Aes128 => run::<Aes128>(key, block, encrypt),
            MgmtAlgorithm::Aes192 => run::<Aes192>(key, block, encrypt),
            MgmtAlgorithm::Aes256 => run::<Aes256>(key, block, encrypt),
        }
    }
}

fn run<C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt>(
    key: &[u8],
    block: &[u8],
    encrypt: bool,
) -> Result<Vec<u8>, Sw> {
    let cipher = C::new_from_slice(key).map_err(|_| Sw::WRONG_DATA)?;
    let mut buf: Array<u8, C::BlockSize> = Array::try_from(block).map_err(|_| Sw::WRONG_DATA)?;
    if encrypt {
        cipher.encrypt_block(&mut buf);
    } else {
        cipher.decrypt_block(&mut buf);
    }
    Ok(buf.to_vec())
}
