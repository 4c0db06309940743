//! Key generation and signing for the soft token, through the core's `SoftwareKey`.
//!
//! The soft token only stores keys; the arithmetic is the crypto core's (shared with tests and
//! other host-side users), so there is one implementation of each algorithm in ukey.

use ukey_api::crypto::SoftwareKey;
use ukey_api::{Error, KeyAlgorithm, Mechanism, Result, SecretBytes, SignInput};

/// Algorithms the soft token generates, in the order people see them. RSA-4096 is offered for
/// completeness; its generation takes seconds.
pub const SUPPORTED: [KeyAlgorithm; 6] = [
    KeyAlgorithm::Sm2,
    KeyAlgorithm::P256,
    KeyAlgorithm::P384,
    KeyAlgorithm::Rsa { bits: 2048 },
    KeyAlgorithm::Rsa { bits: 3072 },
    KeyAlgorithm::Rsa { bits: 4096 },
];

/// A new key pair: private key as PKCS#8 DER, public key as DER SubjectPublicKeyInfo.
pub struct GeneratedKey {
    /// PKCS#8 DER.
    pub pkcs8: SecretBytes,
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
}

/// Refuses an algorithm the soft token does not generate, listing the ones it does.
pub fn check_supported(alg: KeyAlgorithm) -> Result<()> {
    if SUPPORTED.contains(&alg) {
        return Ok(());
    }
    let names: Vec<String> = SUPPORTED.iter().map(|a| a.name()).collect();
    Err(Error::NotSupported(format!(
        "the software token cannot generate {alg} keys; it supports: {}",
        names.join(", ")
    )))
}

/// Generates a key pair.
pub fn generate(alg: KeyAlgorithm) -> Result<GeneratedKey> {
    check_supported(alg)?;
    let key = SoftwareKey::generate(alg)?;
    Ok(GeneratedKey { pkcs8: key.to_pkcs8_der()?, spki: key.public_key_spki().to_vec() })
}

/// Signs a prepared digest with a PKCS#8 private key; returns r‖s for EC/SM2, the block for RSA.
pub fn sign(alg: KeyAlgorithm, pkcs8: &[u8], mechanism: &Mechanism, input: &SignInput) -> Result<Vec<u8>> {
    let key = SoftwareKey::from_pkcs8_der(pkcs8)
        .map_err(|e| Error::Crypto(format!("the stored {alg} key does not load: {e}")))?;
    if key.algorithm() != alg {
        return Err(Error::Crypto(format!("the stored key is {} but is recorded as {alg}", key.algorithm())));
    }
    key.sign_digest(mechanism, input)
}
