//! Proof that a certificate belongs to the key in a PIV slot, for cards that never reveal a
//! key's public half after generation: the card signs a random digest with the slot's key and
//! the host verifies it with the certificate's public key.

use p256::pkcs8::DecodePublicKey;
use sha2::Sha256;
use signature::hazmat::PrehashVerifier;
use ukey_api::{Error, KeyAlgorithm, Result};

/// A random digest of `len` bytes to have signed.
pub fn random_digest(len: usize) -> Result<Vec<u8>> {
    let mut d = vec![0u8; len];
    getrandom::fill(&mut d).map_err(|e| Error::Device(format!("no randomness: {e}")))?;
    Ok(d)
}

/// Whether `signature` (raw `r ‖ s` for EC, the block for RSA PKCS#1 v1.5 SHA-256) over
/// `digest` verifies with the SubjectPublicKeyInfo `spki`.
pub fn verifies(spki: &[u8], algorithm: KeyAlgorithm, digest: &[u8], signature: &[u8]) -> bool {
    match algorithm {
        KeyAlgorithm::P256 => {
            let (Ok(key), Ok(sig)) =
                (p256::ecdsa::VerifyingKey::from_public_key_der(spki), p256::ecdsa::Signature::from_slice(signature))
            else {
                return false;
            };
            key.verify_prehash(digest, &sig).is_ok()
        }
        KeyAlgorithm::P384 => {
            let (Ok(key), Ok(sig)) =
                (p384::ecdsa::VerifyingKey::from_public_key_der(spki), p384::ecdsa::Signature::from_slice(signature))
            else {
                return false;
            };
            key.verify_prehash(digest, &sig).is_ok()
        }
        KeyAlgorithm::Rsa { .. } => {
            let (Ok(key), Ok(sig)) =
                (rsa::PublicKey::from_public_key_der(spki), rsa::pkcs1v15::Signature::try_from(signature))
            else {
                return false;
            };
            rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key).verify_prehash(digest, &sig).is_ok()
        }
        KeyAlgorithm::Sm2 => false,
    }
}
