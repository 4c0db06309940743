//! Authenticated encryption of everything secret in a token file (XChaCha20-Poly1305).
//!
//! The 24-byte nonce is random for every seal, which is safe for XChaCha at any realistic number
//! of writes. The associated data binds each ciphertext to its place (token serial, kind of
//! object, object id), so a blob copied into another slot or another token fails to open instead
//! of being used there.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use ukey_api::{Error, Result, SecretBytes};

use crate::kdf::KEY_LEN;
use crate::random::random_bytes;
use crate::serde_b64;

/// XChaCha20 nonce length.
pub const NONCE_LEN: usize = 24;

/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;

/// A ciphertext with its nonce, as stored in the token file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Random nonce.
    #[serde(with = "serde_b64")]
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the tag.
    #[serde(with = "serde_b64")]
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// Checks the shape without decrypting, for file validation.
    pub fn check_shape(&self) -> std::result::Result<(), String> {
        if self.nonce.len() != NONCE_LEN {
            return Err(format!("a nonce is {} bytes instead of {NONCE_LEN}", self.nonce.len()));
        }
        if self.ciphertext.len() < TAG_LEN {
            return Err("a ciphertext is shorter than its authentication tag".into());
        }
        Ok(())
    }
}

/// Why opening a sealed value failed: the key was wrong (or the data altered), or the record's
/// shape is damaged.
#[derive(Debug)]
pub enum OpenError {
    /// Authentication failed.
    Unauthentic,
    /// The record cannot even be tried.
    Malformed(String),
}

/// Encrypts `plaintext` under `key`, bound to `aad`.
pub fn seal(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce_bytes = random_bytes::<NONCE_LEN>()?;
    let nonce = XNonce::from(nonce_bytes);
    let mut buffer = Zeroizing::new(plaintext.to_vec());
    cipher
        .encrypt_in_place(&nonce, aad, &mut *buffer)
        .map_err(|_| Error::Crypto("XChaCha20-Poly1305 encryption failed".into()))?;
    Ok(Sealed { nonce: nonce_bytes.to_vec(), ciphertext: buffer.to_vec() })
}

/// Decrypts a sealed value; the plaintext lives only in a zeroizing buffer.
pub fn open(key: &[u8; KEY_LEN], aad: &[u8], sealed: &Sealed) -> std::result::Result<SecretBytes, OpenError> {
    sealed.check_shape().map_err(OpenError::Malformed)?;
    let nonce = XNonce::try_from(sealed.nonce.as_slice()).map_err(|_| OpenError::Malformed("nonce length".into()))?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut buffer: SecretBytes = Zeroizing::new(sealed.ciphertext.clone());
    cipher.decrypt_in_place(&nonce, aad, &mut *buffer).map_err(|_| OpenError::Unauthentic)?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = [7u8; KEY_LEN];
        let sealed = seal(&key, b"slot-a", b"secret").unwrap();
        assert_eq!(open(&key, b"slot-a", &sealed).unwrap().as_slice(), b"secret");
        assert!(matches!(open(&key, b"slot-b", &sealed), Err(OpenError::Unauthentic)));
        assert!(matches!(open(&[8u8; KEY_LEN], b"slot-a", &sealed), Err(OpenError::Unauthentic)));
        let mut short = sealed.clone();
        short.nonce.pop();
        assert!(matches!(open(&key, b"slot-a", &short), Err(OpenError::Malformed(_))));
    }
}
