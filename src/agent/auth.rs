//! Web-eID-style authentication tokens: the carrier signs `hash(origin) ‖ hash(nonce)`, so a
//! token obtained by a phishing origin is useless at the real one, and a replayed token fails on
//! the server's fresh nonce.
//!
//! The hash is the mechanism's own (SHA-256 for P-256 and RSA, SHA-384 for P-384, SM3 for SM2);
//! the concatenation is then signed as a message with that mechanism. [`verify_token`] is what a
//! Rust web server calls; `web/ukey.js` has the same check (`verifyAuthToken`) for servers and
//! pages in JavaScript (ECDSA and RSA; SM2 is not in WebCrypto).

use serde::{Deserialize, Serialize};

use ukey_api::crypto::encoding::base64_decode;
use ukey_api::crypto::prepare::SignData;
use ukey_api::crypto::verify::verify_signature;
use ukey_api::{CertificateInfo, Error, KeyAlgorithm, Mechanism};

/// The token format name.
pub const FORMAT: &str = "ukey-auth/1";

/// Shortest nonce accepted (characters): 16, i.e. at least 96 bits of base64 randomness.
pub const MIN_NONCE: usize = 16;

/// Longest nonce accepted (characters).
pub const MAX_NONCE: usize = 256;

/// An authentication token as the agent returns it and a server receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthToken {
    /// Always [`FORMAT`].
    pub format: String,
    /// The origin the token is for (canonical form).
    pub origin: String,
    /// The server's nonce, as given.
    pub nonce: String,
    /// The mechanism's name (`ecdsa-sha256`, `sm2-sm3`, ...).
    pub algorithm: String,
    /// The signer's certificate, base64 DER.
    pub certificate: String,
    /// The signature, base64: raw `r ‖ s` for EC and SM2, the signature block for RSA.
    pub signature: String,
}

/// Checks a nonce: bounded length, printable ASCII.
pub fn check_nonce(nonce: &str) -> Result<(), Error> {
    let n = nonce.chars().count();
    if !(MIN_NONCE..=MAX_NONCE).contains(&n) {
        return Err(Error::InvalidInput(format!(
            "the nonce has {n} characters; it must have {MIN_NONCE} to {MAX_NONCE} (e.g. 32 random bytes in base64)"
        )));
    }
    if !nonce.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Error::InvalidInput("the nonce must be printable ASCII without spaces (e.g. base64)".into()));
    }
    Ok(())
}

/// The mechanism used with a key algorithm for authentication.
pub fn mechanism_for(alg: KeyAlgorithm) -> Mechanism {
    alg.default_mechanism()
}

/// What is signed: `hash(origin) ‖ hash(nonce)` with the mechanism's hash.
pub fn signed_message(mechanism: &Mechanism, origin: &str, nonce: &str) -> Vec<u8> {
    let hash = mechanism.hash();
    let mut out = hash.digest(origin.as_bytes());
    out.extend_from_slice(&hash.digest(nonce.as_bytes()));
    out
}

/// Verifies a token for the expected origin and nonce: format, origin and nonce equal, the
/// signature made by the certificate's key over `hash(origin) ‖ hash(nonce)`. Returns the
/// parsed certificate so the server can check its chain, validity and subject.
///
/// `now` (Unix seconds), when given, also checks the certificate's validity period.
pub fn verify_token(
    token: &AuthToken,
    expected_origin: &str,
    expected_nonce: &str,
    now: Option<i64>,
) -> Result<CertificateInfo, Error> {
    if token.format != FORMAT {
        return Err(Error::Crypto(format!("unknown token format `{}`; expected {FORMAT}", token.format)));
    }
    if token.origin != expected_origin {
        return Err(Error::Crypto(format!("the token was made for {}, not for {expected_origin}", token.origin)));
    }
    if token.nonce != expected_nonce {
        return Err(Error::Crypto("the token answers another nonce (replayed or stale)".into()));
    }
    let der = base64_decode(&token.certificate).map_err(|e| Error::Crypto(format!("certificate: {e}")))?;
    let cert = CertificateInfo::parse(&der)?;
    let alg = cert
        .key_algorithm
        .ok_or_else(|| Error::NotSupported("the certificate's key algorithm is not supported".into()))?;
    let mechanism = mechanism_for(alg);
    if token.algorithm != mechanism.name() {
        return Err(Error::Crypto(format!(
            "the token says {} but a {alg} certificate authenticates with {}",
            token.algorithm,
            mechanism.name()
        )));
    }
    if let Some(t) = now
        && (t < cert.not_before || t > cert.not_after)
    {
        return Err(Error::Crypto("the certificate is not valid at this time".into()));
    }
    let signature = base64_decode(&token.signature).map_err(|e| Error::Crypto(format!("signature: {e}")))?;
    let message = signed_message(&mechanism, &token.origin, &token.nonce);
    verify_signature(&cert.public_key, &mechanism, SignData::Message(&message), &signature)?;
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_bounds() {
        assert!(check_nonce("short").is_err());
        assert!(check_nonce(&"a".repeat(16)).is_ok());
        assert!(check_nonce(&"a".repeat(257)).is_err());
        assert!(check_nonce("0123456789abcdef with space").is_err());
    }

    #[test]
    fn origin_and_nonce_both_enter_the_signed_message() {
        let m = Mechanism::EcdsaSha256;
        let a = signed_message(&m, "https://bank.example", "nonce-0123456789");
        assert_eq!(a.len(), 64);
        assert_ne!(a, signed_message(&m, "https://evil.example", "nonce-0123456789"));
        assert_ne!(a, signed_message(&m, "https://bank.example", "nonce-0123456789x"));
        assert_eq!(signed_message(&Mechanism::EcdsaSha384, "o", "n").len(), 96);
    }
}
