//! Public keys as PIV cards return them from GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 Part 2
//! §3.3.2, Table 13: template `7F49` with `81` modulus / `82` exponent, or `86` EC point),
//! turned into the DER SubjectPublicKeyInfo the rest of ukey speaks.

use der::Encode;
use der::asn1::{AnyRef, BitString, ObjectIdentifier, UintRef};
use spki::{AlgorithmIdentifier, SubjectPublicKeyInfo};
use ukey_api::crypto::keyinfo::{OID_EC_PUBLIC_KEY, OID_P256, OID_P384, OID_RSA};
use ukey_api::{Error, KeyAlgorithm, Result};

use super::objects::{alg, key_algorithm};
use crate::tlv;

/// The key a GENERATE ASYMMETRIC KEY PAIR answer describes, as DER SubjectPublicKeyInfo.
pub fn spki_from_generate(algorithm_id: u8, response: &[u8]) -> Result<(KeyAlgorithm, Vec<u8>)> {
    let template = tlv::require(response, 0x7F49)?;
    let algorithm =
        key_algorithm(algorithm_id).ok_or_else(|| Error::NotSupported(format!("PIV algorithm {algorithm_id:02X}")))?;
    let spki = match algorithm_id {
        alg::ECC_P256 | alg::ECC_P384 => {
            let point = tlv::require(template, 0x86)?;
            let (curve, len) = if algorithm_id == alg::ECC_P256 { (OID_P256, 65) } else { (OID_P384, 97) };
            if point.len() != len || point.first() != Some(&0x04) {
                return Err(Error::Device(format!(
                    "the card returned a {}-byte EC point; an uncompressed {algorithm} point has {len}",
                    point.len()
                )));
            }
            ec_spki(curve, point)?
        }
        _ => {
            let modulus = tlv::require(template, 0x81)?;
            let exponent = tlv::require(template, 0x82)?;
            rsa_spki(modulus, exponent)?
        }
    };
    Ok((algorithm, spki))
}

fn der_err(e: der::Error) -> Error {
    Error::Device(format!("the card's public key does not encode: {e}"))
}

/// SubjectPublicKeyInfo of an EC key on a named curve.
pub fn ec_spki(curve: ObjectIdentifier, point: &[u8]) -> Result<Vec<u8>> {
    let params = curve.to_der().map_err(der_err)?;
    let spki = SubjectPublicKeyInfo {
        algorithm: AlgorithmIdentifier {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(AnyRef::try_from(params.as_slice()).map_err(der_err)?),
        },
        subject_public_key: BitString::from_bytes(point).map_err(der_err)?,
    };
    spki.to_der().map_err(der_err)
}

/// SubjectPublicKeyInfo of an RSA key.
pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>> {
    let key = rsa_public_key_der(modulus, exponent)?;
    let spki = SubjectPublicKeyInfo {
        algorithm: AlgorithmIdentifier { oid: OID_RSA, parameters: Some(AnyRef::NULL) },
        subject_public_key: BitString::from_bytes(&key).map_err(der_err)?,
    };
    spki.to_der().map_err(der_err)
}

fn rsa_public_key_der(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>> {
    let n = UintRef::new(modulus).map_err(der_err)?;
    let e = UintRef::new(exponent).map_err(der_err)?;
    let mut body = Vec::new();
    n.encode_to_vec(&mut body).map_err(der_err)?;
    e.encode_to_vec(&mut body).map_err(der_err)?;
    Ok(tlv::encoded(0x30, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ukey_api::crypto::keyinfo::spki_algorithm;

    #[test]
    fn ec_point_becomes_spki() {
        let mut point = vec![0x04];
        point.extend_from_slice(&[0x11; 64]);
        let resp = tlv::encoded(0x7F49, &tlv::encoded(0x86, &point));
        let (alg, spki) = spki_from_generate(alg::ECC_P256, &resp).unwrap();
        assert_eq!(alg, KeyAlgorithm::P256);
        assert_eq!(spki_algorithm(&spki).unwrap(), KeyAlgorithm::P256);
        // Wrong length for the curve.
        assert!(spki_from_generate(alg::ECC_P384, &resp).is_err());
    }

    #[test]
    fn rsa_parts_become_spki() {
        let mut modulus = vec![0xC5];
        modulus.extend_from_slice(&[0x5A; 255]);
        let body = [tlv::encoded(0x81, &modulus), tlv::encoded(0x82, &[1, 0, 1])].concat();
        let (alg, spki) = spki_from_generate(alg::RSA_2048, &tlv::encoded(0x7F49, &body)).unwrap();
        assert_eq!(alg, KeyAlgorithm::Rsa { bits: 2048 });
        assert_eq!(spki_algorithm(&spki).unwrap(), KeyAlgorithm::Rsa { bits: 2048 });
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(spki_from_generate(alg::ECC_P256, &[0x7F, 0x49, 0x05, 0x86]).is_err());
        assert!(spki_from_generate(alg::RSA_2048, &tlv::encoded(0x7F49, &tlv::encoded(0x81, &[1]))).is_err());
        assert!(spki_from_generate(0x42, &tlv::encoded(0x7F49, &[])).is_err());
    }
}
