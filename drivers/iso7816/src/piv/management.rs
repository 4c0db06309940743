//! The PIV card management key (key reference `9B`): its algorithm and value, where ukey gets it
//! from, and the block cipher it authenticates with (SP 800-73-4 Part 2 Appendix A.1, mutual
//! authentication with witness and challenge).
//!
//! Where the key comes from: `UKEY_PIV_MGMT_KEY` holds `[ALG:]HEX` (ALG one of `3des`,
//! `aes128`, `aes192`, `aes256`; a 24-byte key without ALG is tried as 3DES, then AES-192).
//! Unset, ukey uses the well-known factory default `010203040506070801020304050607080102030405060708`
//! that fresh and freshly reset cards carry — and logs a warning, because anyone can use it:
//! change it on cards in service.

use std::fmt;

use aes::{Aes128, Aes192, Aes256};
use des::TdesEde3;
use des::cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use ukey_api::{Error, Result, SecretBytes};
use zeroize::Zeroizing;

use super::objects::alg;

/// The environment variable that carries the management key.
pub const ENV_MGMT_KEY: &str = "UKEY_PIV_MGMT_KEY";

/// The factory-default management key of PIV cards (and after a reset).
pub const DEFAULT_MGMT_KEY: [u8; 24] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x01, 0x02, 0x03,
    0x04, 0x05, 0x06, 0x07, 0x08,
];

/// Block ciphers a management key can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgmtAlgorithm {
    /// Three-key Triple DES (`03`).
    Tdes,
    /// AES-128 (`08`).
    Aes128,
    /// AES-192 (`0A`).
    Aes192,
    /// AES-256 (`0C`).
    Aes256,
}

impl MgmtAlgorithm {
    /// PIV algorithm identifier.
    pub fn id(self) -> u8 {
        match self {
            MgmtAlgorithm::Tdes => alg::TDES,
            MgmtAlgorithm::Aes128 => alg::AES_128,
            MgmtAlgorithm::Aes192 => alg::AES_192,
            MgmtAlgorithm::Aes256 => alg::AES_256,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            MgmtAlgorithm::Tdes | MgmtAlgorithm::Aes192 => 24,
            MgmtAlgorithm::Aes128 => 16,
            MgmtAlgorithm::Aes256 => 32,
        }
    }

    /// Block length in bytes: the size of witness and challenge.
    pub fn block_len(self) -> usize {
        match self {
            MgmtAlgorithm::Tdes => 8,
            _ => 16,
        }
    }

    fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "3des" | "tdes" | "des3" => Ok(MgmtAlgorithm::Tdes),
            "aes128" => Ok(MgmtAlgorithm::Aes128),
            "aes192" => Ok(MgmtAlgorithm::Aes192),
            "aes256" => Ok(MgmtAlgorithm::Aes256),
            other => Err(Error::InvalidInput(format!(
                "{ENV_MGMT_KEY}: unknown algorithm `{other}`; use 3des, aes128, aes192 or aes256"
            ))),
        }
    }
}

/// A management key: value, and the algorithms to try in order.
#[derive(Clone)]
pub struct ManagementKey {
    key: SecretBytes,
    candidates: Vec<MgmtAlgorithm>,
    /// This is the published factory default.
    pub is_default: bool,
}

impl fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementKey")
            .field("candidates", &self.candidates)
            .field("is_default", &self.is_default)
            .finish_non_exhaustive()
    }
}

impl ManagementKey {
    /// The factory default (3DES on older cards, AES-192 on newer ones: both are tried).
    pub fn default_key() -> Self {
        ManagementKey {
            key: Zeroizing::new(DEFAULT_MGMT_KEY.to_vec()),
            candidates: vec![MgmtAlgorithm::Tdes, MgmtAlgorithm::Aes192],
            is_default: true,
        }
    }

    /// Parses `[ALG:]HEX`.
    pub fn parse(text: &str) -> Result<Self> {
        let text = Zeroizing::new(text.trim().to_string());
        let (alg, hex_part) = match text.split_once(':') {
            Some((a, h)) => (Some(MgmtAlgorithm::parse(a)?), h),
            None => (None, text.as_str()),
        };
        let clean: Zeroizing<String> = Zeroizing::new(hex_part.chars().filter(|c| !c.is_whitespace()).collect());
        let key =
            Zeroizing::new(hex::decode(clean.as_str()).map_err(|_| {
                Error::InvalidInput(format!("{ENV_MGMT_KEY} must be hex, optionally prefixed by ALG:"))
            })?);
        let candidates = match alg {
            Some(a) if a.key_len() == key.len() => vec![a],
            Some(a) => {
                return Err(Error::InvalidInput(format!(
                    "{ENV_MGMT_KEY}: a {a:?} key has {} bytes, this one has {}",
                    a.key_len(),
                    key.len()
                )));
            }
            None => match key.len() {
                16 => vec![MgmtAlgorithm::Aes128],
                24 => vec![MgmtAlgorithm::Tdes, MgmtAlgorithm::Aes192],
                32 => vec![MgmtAlgorithm::Aes256],
                n => {
                    return Err(Error::InvalidInput(format!(
                        "{ENV_MGMT_KEY}: a management key has 16, 24 or 32 bytes, this one has {n}"
                    )));
                }
            },
        };
        let is_default = key.as_slice() == DEFAULT_MGMT_KEY;
        Ok(ManagementKey { key, candidates, is_default })
    }

    /// The key from `UKEY_PIV_MGMT_KEY`, or the factory default with a warning.
    pub fn from_env() -> Result<Self> {
        match std::env::var(ENV_MGMT_KEY) {
            Ok(text) if !text.trim().is_empty() => Self::parse(&text),
            _ => {
                log::warn!(
                    "{ENV_MGMT_KEY} is not set: using the well-known default PIV management key; \
                     set the card's own key for cards in service"
                );
                Ok(Self::default_key())
            }
        }
    }

    /// Algorithms to try, in order.
    pub fn candidates(&self) -> &[MgmtAlgorithm] {
        &self.candidates
    }

    /// Encrypts one block.
    pub fn encrypt(&self, alg: MgmtAlgorithm, block: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.crypt(alg, block, true)
    }

    /// Decrypts one block.
    pub fn decrypt(&self, alg: MgmtAlgorithm, block: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.crypt(alg, block, false)
    }

    fn crypt(&self, alg: MgmtAlgorithm, block: &[u8], encrypt: bool) -> Result<Zeroizing<Vec<u8>>> {
        match alg {
            MgmtAlgorithm::Tdes => one_block::<TdesEde3>(&self.key, block, encrypt),
            MgmtAlgorithm::Aes128 => one_block::<Aes128>(&self.key, block, encrypt),
            MgmtAlgorithm::Aes192 => one_block::<Aes192>(&self.key, block, encrypt),
            MgmtAlgorithm::Aes256 => one_block::<Aes256>(&self.key, block, encrypt),
        }
    }
}

fn one_block<C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt>(
    key: &[u8],
    data: &[u8],
    encrypt: bool,
) -> Result<Zeroizing<Vec<u8>>> {
    let cipher = C::new_from_slice(key)
        .map_err(|_| Error::InvalidInput("the management key has the wrong length for its algorithm".into()))?;
    let mut block = Block::<C>::try_from(data).map_err(|_| {
        Error::Device(format!("the card sent a {}-byte authentication block; expected one cipher block", data.len()))
    })?;
    if encrypt {
        cipher.encrypt_block(&mut block);
    } else {
        cipher.decrypt_block(&mut block);
    }
    Ok(Zeroizing::new(block.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let k = ManagementKey::parse("010203040506070801020304050607080102030405060708").unwrap();
        assert!(k.is_default);
        assert_eq!(k.candidates(), &[MgmtAlgorithm::Tdes, MgmtAlgorithm::Aes192]);
        let k = ManagementKey::parse("aes128:00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(k.candidates(), &[MgmtAlgorithm::Aes128]);
        assert!(!k.is_default);
        assert!(ManagementKey::parse("aes256:0011").is_err());
        assert!(ManagementKey::parse("xyz").is_err());
        assert!(ManagementKey::parse("rc4:00").is_err());
        assert!(ManagementKey::parse("0011").is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let k = ManagementKey::parse("aes128:00112233445566778899aabbccddeeff").unwrap();
        assert!(!format!("{k:?}").contains("0011"));
    }

    #[test]
    fn known_answer_vectors() {
        // FIPS 197 Appendix C.1 (AES-128).
        let k = ManagementKey::parse("aes128:000102030405060708090a0b0c0d0e0f").unwrap();
        let pt = hex::decode("00112233445566778899aabbccddeeff").unwrap();
        let ct = k.encrypt(MgmtAlgorithm::Aes128, &pt).unwrap();
        assert_eq!(hex::encode(&ct[..]), "69c4e0d86a7b0430d8cdb78070b4c55a");
        assert_eq!(&k.decrypt(MgmtAlgorithm::Aes128, &ct).unwrap()[..], &pt[..]);
        // 3DES with three equal keys is single DES: FIPS 81 / the classic 0123456789ABCDEF test.
        let k = ManagementKey::parse("3des:133457799BBCDFF1133457799BBCDFF1133457799BBCDFF1").unwrap();
        let ct = k.encrypt(MgmtAlgorithm::Tdes, &hex::decode("0123456789ABCDEF").unwrap()).unwrap();
        assert_eq!(hex::encode_upper(&ct[..]), "85E813540F0AB405");
        // A wrong-size block is an error, not a panic.
        assert!(k.encrypt(MgmtAlgorithm::Tdes, &[0; 7]).is_err());
    }
}
