//! What kind of public key a SubjectPublicKeyInfo holds.

use const_oid::ObjectIdentifier;
use der::Decode;
use spki::SubjectPublicKeyInfoRef;

use crate::error::{Error, Result};
use crate::mechanism::KeyAlgorithm;

/// id-ecPublicKey (RFC 5480).
pub const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// prime256v1 / NIST P-256.
pub const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 / NIST P-384.
pub const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// The SM2 curve (GM/T 0006 `sm2p256v1`, also used as an algorithm id by some issuers).
pub const OID_SM2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
/// rsaEncryption (PKCS#1).
pub const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The algorithm of a DER SubjectPublicKeyInfo.
pub fn spki_algorithm(spki_der: &[u8]) -> Result<KeyAlgorithm> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| Error::InvalidInput(format!("not a SubjectPublicKeyInfo: {e}")))?;
    let alg = spki.algorithm.oid;
    if alg == OID_SM2 {
        return Ok(KeyAlgorithm::Sm2);
    }
    if alg == OID_EC_PUBLIC_KEY {
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as().ok())
            .ok_or_else(|| Error::InvalidInput("EC public key without a named curve".into()))?;
        return match curve {
            c if c == OID_P256 => Ok(KeyAlgorithm::P256),
            c if c == OID_P384 => Ok(KeyAlgorithm::P384),
            c if c == OID_SM2 => Ok(KeyAlgorithm::Sm2),
            other => Err(Error::NotSupported(format!("EC curve {other}; supported: P-256, P-384, SM2"))),
        };
    }
    if alg == OID_RSA {
        let key = rsa::pkcs1::RsaPublicKey::<der::asn1::UintRef<'_>>::from_der(spki.subject_public_key.raw_bytes())
            .map_err(|e| Error::InvalidInput(format!("malformed RSA public key: {e}")))?;
        let modulus = key.modulus.as_bytes();
        let bits = (modulus.len() * 8) as u32 - modulus.first().map_or(0, |b| b.leading_zeros());
        return Ok(KeyAlgorithm::Rsa { bits });
    }
    Err(Error::NotSupported(format!("public key algorithm {alg}; supported: SM2, EC P-256/P-384, RSA")))
}
