//! Key algorithms and public keys from PKCS#11 attributes, and the attributes for new keys.
//!
//! Tokens describe an EC key by `CKA_EC_PARAMS` (the DER curve OID) and `CKA_EC_POINT` (a DER
//! OCTET STRING around the point, or on some tokens the bare point), an RSA key by
//! `CKA_MODULUS` / `CKA_PUBLIC_EXPONENT`. ukey speaks in SubjectPublicKeyInfo DER, the form
//! certificates carry, so keys and certificates can be matched byte for byte.

use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString, Null, OctetStringRef, UintRef};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use ukey_api::crypto::keyinfo::{OID_EC_PUBLIC_KEY, OID_P256, OID_P384, OID_RSA, OID_SM2};
use ukey_api::{Error, KeyAlgorithm, Result};

/// `CKK_RSA`.
pub const CKK_RSA: u64 = 0x0;
/// `CKK_EC`.
pub const CKK_EC: u64 = 0x3;

/// The curve OID of an EC key algorithm.
pub fn curve_oid(algorithm: KeyAlgorithm) -> Option<ObjectIdentifier> {
    match algorithm {
        KeyAlgorithm::P256 => Some(OID_P256),
        KeyAlgorithm::P384 => Some(OID_P384),
        KeyAlgorithm::Sm2 => Some(OID_SM2),
        KeyAlgorithm::Rsa { .. } => None,
    }
}

/// `CKA_EC_PARAMS` for a curve: the DER-encoded named-curve OID.
pub fn ec_params(algorithm: KeyAlgorithm) -> Result<Vec<u8>> {
    let oid = curve_oid(algorithm)
        .ok_or_else(|| Error::InvalidInput(format!("{algorithm} is not an elliptic-curve algorithm")))?;
    oid.to_der().map_err(|e| Error::Crypto(format!("encoding the curve OID: {e}")))
}

/// The algorithm a `CKA_EC_PARAMS` value names, if ukey supports it.
pub fn curve_from_params(params: &[u8]) -> Option<KeyAlgorithm> {
    let oid = ObjectIdentifier::from_der(params).ok()?;
    match oid {
        o if o == OID_P256 => Some(KeyAlgorithm::P256),
        o if o == OID_P384 => Some(KeyAlgorithm::P384),
        o if o == OID_SM2 => Some(KeyAlgorithm::Sm2),
        _ => None,
    }
}

/// The uncompressed point from `CKA_EC_POINT`, accepting the DER OCTET STRING the standard asks
/// for and the bare point some tokens return.
pub fn ec_point(value: &[u8], algorithm: KeyAlgorithm) -> Result<Vec<u8>> {
    let field = algorithm.ec_field_len().ok_or_else(|| Error::Crypto("not an EC key".into()))?;
    let bare_len = 2 * field + 1;
    if value.len() == bare_len && value.first() == Some(&0x04) {
        return Ok(value.to_vec());
    }
    let inner = <&OctetStringRef>::from_der(value)
        .map_err(|e| Error::Crypto(format!("CKA_EC_POINT is neither a point nor a DER OCTET STRING: {e}")))?;
    let point = inner.as_bytes();
    if point.len() != bare_len || point.first() != Some(&0x04) {
        return Err(Error::Crypto(format!(
            "CKA_EC_POINT holds {} bytes; an uncompressed {algorithm} point has {bare_len}",
            point.len()
        )));
    }
    Ok(point.to_vec())
}

/// SubjectPublicKeyInfo DER for an EC point (`id-ecPublicKey` with the named curve, which is
/// also how OpenSSL writes SM2 keys).
pub fn ec_spki(algorithm: KeyAlgorithm, point: &[u8]) -> Result<Vec<u8>> {
    let curve = curve_oid(algorithm).ok_or_else(|| Error::Crypto(format!("{algorithm} is not an EC algorithm")))?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&curve).map_err(|e| Error::Crypto(e.to_string()))?),
        },
        subject_public_key: BitString::from_bytes(point).map_err(|e| Error::Crypto(e.to_string()))?,
    };
    spki.to_der().map_err(|e| Error::Crypto(format!("encoding the public key: {e}")))
}

/// SubjectPublicKeyInfo DER for an RSA key.
pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: der::Error| Error::Crypto(format!("encoding the RSA public key: {e}"));
    let key = rsa::pkcs1::RsaPublicKey {
        modulus: UintRef::new(strip_zeros(modulus)).map_err(bad)?,
        public_exponent: UintRef::new(strip_zeros(exponent)).map_err(bad)?,
    };
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: OID_RSA, parameters: Some(Any::encode_from(&Null).map_err(bad)?) },
        subject_public_key: BitString::from_bytes(&key.to_der().map_err(bad)?).map_err(bad)?,
    };
    spki.to_der().map_err(bad)
}

/// RSA modulus size in bits.
pub fn rsa_bits(modulus: &[u8]) -> u32 {
    let m = strip_zeros(modulus);
    let lead = m.first().map_or(0, |b| b.leading_zeros());
    (m.len() as u32 * 8).saturating_sub(lead)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The uncompressed EC point inside a SubjectPublicKeyInfo, for matching certificates to keys.
pub fn spki_point(spki_der: &[u8]) -> Option<Vec<u8>> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der).ok()?;
    spki.subject_public_key.as_bytes().map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ukey_api::crypto::keyinfo::spki_algorithm;

    #[test]
    fn curves_round_trip() {
        for alg in [KeyAlgorithm::P256, KeyAlgorithm::P384, KeyAlgorithm::Sm2] {
            assert_eq!(curve_from_params(&ec_params(alg).unwrap()), Some(alg));
        }
        assert_eq!(hex::encode(ec_params(KeyAlgorithm::P256).unwrap()), "06082a8648ce3d030107");
        assert!(curve_from_params(b"\x06\x03\x2b\x65\x70").is_none());
        assert!(ec_params(KeyAlgorithm::Rsa { bits: 2048 }).is_err());
    }

    #[test]
    fn ec_points_in_both_encodings() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&point);
        assert_eq!(ec_point(&point, KeyAlgorithm::P256).unwrap(), point);
        assert_eq!(ec_point(&wrapped, KeyAlgorithm::P256).unwrap(), point);
        assert!(ec_point(&wrapped, KeyAlgorithm::P384).is_err());
        assert!(ec_point(b"\x04\x01\x02", KeyAlgorithm::P256).is_err());
    }

    #[test]
    fn spkis_are_recognised_by_the_core() {
        let sk = p256::SecretKey::from_slice(&[9u8; 32]).unwrap();
        let point = sk.public_key().to_sec1_bytes();
        let spki = ec_spki(KeyAlgorithm::P256, &point).unwrap();
        assert_eq!(spki_algorithm(&spki).unwrap(), KeyAlgorithm::P256);
        assert_eq!(spki_point(&spki).unwrap(), point.to_vec());

        let mut modulus = vec![0u8, 0xC3];
        modulus.extend([0x11; 255]);
        let spki = rsa_spki(&modulus, &[1, 0, 1]).unwrap();
        assert_eq!(spki_algorithm(&spki).unwrap(), KeyAlgorithm::Rsa { bits: 2048 });
        assert_eq!(rsa_bits(&modulus), 2048);
    }
}
