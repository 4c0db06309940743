//! Asymmetric keys held in the PIV key slots: generation, the public key template returned by
//! GENERATE ASYMMETRIC KEY PAIR, and the private-key operations of GENERAL AUTHENTICATE.

use std::fmt;

use ecdsa::signature::hazmat::PrehashSigner;
use p256::elliptic_curve::Generate;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PrivateKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::rng;
use crate::status::Sw;
use crate::tlv;

/// Asymmetric algorithms of the card, with their SP 800-78-4 identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// RSA with a 1024-bit modulus (identifier 06); legacy, kept because piv-tool offers it.
    Rsa1024,
    /// RSA with a 2048-bit modulus (identifier 07).
    Rsa2048,
    /// ECC on P-256 (identifier 11).
    EccP256,
    /// ECC on P-384 (identifier 14).
    EccP384,
}

impl KeyAlgorithm {
    /// The identifier used in GENERATE (tag 80) and as P1 of GENERAL AUTHENTICATE.
    pub fn id(self) -> u8 {
        match self {
            KeyAlgorithm::Rsa1024 => 0x06,
            KeyAlgorithm::Rsa2048 => 0x07,
            KeyAlgorithm::EccP256 => 0x11,
            KeyAlgorithm::EccP384 => 0x14,
        }
    }

    /// The algorithm for an identifier, if the card supports it.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            0x06 => Some(KeyAlgorithm::Rsa1024),
            0x07 => Some(KeyAlgorithm::Rsa2048),
            0x11 => Some(KeyAlgorithm::EccP256),
            0x14 => Some(KeyAlgorithm::EccP384),
            _ => None,
        }
    }
}

/// A private key in a slot. Debug never shows key material.
pub enum SlotKey {
    /// An RSA key.
    Rsa(Box<PrivateKey>),
    /// A P-256 key.
    P256(p256::SecretKey),
    /// A P-384 key.
    P384(p384::SecretKey),
}

impl fmt::Debug for SlotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotKey({:?}, <secret>)", self.algorithm())
    }
}

/// How a slot key is stored in the state file: algorithm identifier and private key bytes
/// (PKCS#1 DER for RSA, the big-endian scalar for ECC).
#[derive(Serialize, Deserialize)]
pub struct StoredKey {
    /// Algorithm identifier.
    pub alg: u8,
    /// Private key bytes, hex in the state file.
    #[serde(with = "crate::state::hex_secret")]
    pub private: Zeroizing<Vec<u8>>,
}

impl SlotKey {
    /// Generates a fresh key on the card.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self, Sw> {
        let mut rng = rng::system();
        Ok(match alg {
            KeyAlgorithm::Rsa1024 | KeyAlgorithm::Rsa2048 => {
                let bits = if alg == KeyAlgorithm::Rsa1024 { 1024 } else { 2048 };
                let key = PrivateKey::new(&mut rng, bits).map_err(|err| {
                    log::error!("RSA key generation failed: {err}");
                    Sw::MEMORY_FAILURE
                })?;
                SlotKey::Rsa(Box::new(key))
            }
            KeyAlgorithm::EccP256 => SlotKey::P256(p256::SecretKey::generate_from_rng(&mut rng)),
            KeyAlgorithm::EccP384 => SlotKey::P384(p384::SecretKey::generate_from_rng(&mut rng)),
        })
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            SlotKey::Rsa(key) if key.size() <= 128 => KeyAlgorithm::Rsa1024,
            SlotKey::Rsa(_) => KeyAlgorithm::Rsa2048,
            SlotKey::P256(_) => KeyAlgorithm::EccP256,
            SlotKey::P384(_) => KeyAlgorithm::EccP384,
        }
    }

    /// The public key data object template `7F49` (SP 800-73-4 Part 2 §3.3.2, Table 11):
    /// modulus `81` and exponent `82` for RSA, the uncompressed point `86` for ECC.
    pub fn public_key_template(&self) -> Vec<u8> {
        let mut inner = Vec::new();
        match self {
            SlotKey::Rsa(key) => {
                tlv::push(&mut inner, 0x81, &key.n_bytes());
                tlv::push(&mut inner, 0x82, &key.e_bytes());
            }
            SlotKey::P256(key) => tlv::push(&mut inner, 0x86, &key.public_key().to_sec1_bytes()),
            SlotKey::P384(key) => tlv::push(&mut inner, 0x86, &key.public_key().to_sec1_bytes()),
        }
        tlv::encode(0x7F49, &inner)
    }

    /// The private-key operation of GENERAL AUTHENTICATE with a challenge (`81`): an ECDSA
    /// signature (DER `ECDSA-Sig-Value`) over the digest for ECC, the raw RSA private-key
    /// operation over an already padded block for RSA.
    pub fn sign(&self, input: &[u8]) -> Result<Vec<u8>, Sw> {
        match self {
            SlotKey::Rsa(key) => rsa_raw(key, input),
            SlotKey::P256(key) => {
                let signer = p256::ecdsa::SigningKey::from(key);
                let sig: p256::ecdsa::Signature = signer.sign_prehash(input).map_err(|_| Sw::WRONG_DATA)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            SlotKey::P384(key) => {
                let signer = p384::ecdsa::SigningKey::from(key);
                let sig: p384::ecdsa::Signature = signer.sign_prehash(input).map_err(|_| Sw::WRONG_DATA)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }

    /// ECDH with the peer's uncompressed point (`85`, exponentiation): the shared x-coordinate.
    pub fn key_agreement(&self, peer_point: &[u8]) -> Result<Zeroizing<Vec<u8>>, Sw> {
        match self {
            SlotKey::Rsa(_) => Err(Sw::WRONG_DATA),
            SlotKey::P256(key) => {
                let peer = p256::PublicKey::from_sec1_bytes(peer_point).map_err(|_| Sw::WRONG_DATA)?;
                let shared = p256::ecdh::diffie_hellman(key.to_nonzero_scalar(), peer.as_affine());
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            SlotKey::P384(key) => {
                let peer = p384::PublicKey::from_sec1_bytes(peer_point).map_err(|_| Sw::WRONG_DATA)?;
                let shared = p384::ecdh::diffie_hellman(key.to_nonzero_scalar(), peer.as_affine());
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
        }
    }

    /// The form written to the state file.
    pub fn to_stored(&self) -> Result<StoredKey, Sw> {
        let private = match self {
            SlotKey::Rsa(key) => {
                let der = key.to_pkcs1_der().map_err(|_| Sw::MEMORY_FAILURE)?;
                Zeroizing::new(der.as_bytes().to_vec())
            }
            SlotKey::P256(key) => Zeroizing::new(key.to_bytes().to_vec()),
            SlotKey::P384(key) => Zeroizing::new(key.to_bytes().to_vec()),
        };
        Ok(StoredKey { alg: self.algorithm().id(), private })
    }

    /// Rebuilds a key from the state file; `None` when the bytes do not make a valid key.
    pub fn from_stored(stored: &StoredKey) -> Option<Self> {
        match KeyAlgorithm::from_id(stored.alg)? {
            KeyAlgorithm::Rsa1024 | KeyAlgorithm::Rsa2048 => {
                PrivateKey::from_pkcs1_der(&stored.private).ok().map(|k| SlotKey::Rsa(Box::new(k)))
            }
            KeyAlgorithm::EccP256 => p256::SecretKey::from_slice(&stored.private).ok().map(SlotKey::P256),
            KeyAlgorithm::EccP384 => p384::SecretKey::from_slice(&stored.private).ok().map(SlotKey::P384),
        }
    }
}

/// The RSA private-key operation m = c^d mod n on a block exactly as long as the modulus (the
/// host has already applied PKCS#1 v1.5 or PSS padding; SP 800-73-4 leaves padding to the host).
fn rsa_raw(key: &PrivateKey, input: &[u8]) -> Result<Vec<u8>, Sw> {
    let size = key.size();
    if input.len() != size {
        return Err(Sw::WRONG_DATA);
    }
    let precision = key.n().as_ref().bits_precision();
    let c = BoxedUint::from_be_slice(input, precision).map_err(|_| Sw::WRONG_DATA)?;
    let mut rng = rng::system();
    let m = rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut rng), &c).map_err(|_| Sw::WRONG_DATA)?;
    let bytes = m.to_be_bytes();
    // Left-pad (or strip excess leading zero limbs) to exactly the modulus length.
    let mut out = vec![0u8; size];
    let significant = bytes.iter().skip_while(|b| **b == 0).count();
    if significant > size {
        return Err(Sw::WRONG_DATA);
    }
    out[size - significant..].copy_from_slice(&bytes[bytes.len() - significant..]);
    Ok(out)
}
