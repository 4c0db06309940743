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
            check_rsa_key(algorithm, modulus, exponent)?;
            rsa_spki(modulus, exponent)?
        }
    };
    // What the card gave must read back as the key it was asked for (found by fuzzing: an empty
    // exponent made an SPKI nothing else could parse).
    match ukey_api::crypto::spki_algorithm(&spki) {
        Ok(read) if read == algorithm => Ok((algorithm, spki)),
        Ok(read) => Err(Error::Device(format!("the card generated a {read} key where {algorithm} was asked for"))),
        Err(e) => Err(Error::Device(format!("the card's {algorithm} public key is malformed: {e}"))),
    }
}

/// An RSA public key from a card: a modulus of exactly the size asked for and an odd exponent
/// greater than one (leading zero bytes allowed in both, as cards send fixed-width fields).
fn check_rsa_key(algorithm: KeyAlgorithm, modulus: &[u8], exponent: &[u8]) -> Result<()> {
    let KeyAlgorithm::Rsa { bits } = algorithm else {
        return Err(Error::NotSupported(format!("{algorithm} is not an RSA algorithm")));
    };
    let n = strip_zeros(modulus);
    let got = (n.len() * 8) as u32 - n.first().map_or(0, |b| b.leading_zeros());
    if got != bits {
        return Err(Error::Device(format!("the card returned a {got}-bit RSA modulus for an RSA-{bits} key")));
    }
    let e = strip_zeros(exponent);
    if e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
        return Err(Error::Device("the card returned an RSA public exponent that is not odd and above 1".into()));
    }
    Ok(())
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
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

    /// Found by the `piv_objects` fuzz target: an empty exponent and a ten-byte modulus made an
    /// SPKI that no parser accepts. A card's RSA key must have the size asked for and an odd
    /// exponent above one.
    #[test]
    fn a_malformed_rsa_key_from_the_card_is_refused() {
        let fuzzed = [0x7F, 0x49, 0x10, 0x82, 0x00, 0x81, 0x0A, 0, 0, 0, 0x56, 0, 0, 0, 0, 0, 0, 0, 0];
        for algorithm in [alg::RSA_1024, alg::RSA_2048] {
            let err = spki_from_generate(algorithm, &fuzzed).expect_err("refused");
            assert!(err.to_string().contains("modulus"), "{err}");
        }
        let mut modulus = vec![0u8; 256];
        modulus[0] = 0xC5;
        modulus[255] = 0x01;
        for exponent in [&[][..], &[0x00, 0x01][..], &[0x01, 0x00, 0x00][..]] {
            let answer = tlv::encoded(0x7F49, &[tlv::encoded(0x81, &modulus), tlv::encoded(0x82, exponent)].concat());
            let err = spki_from_generate(alg::RSA_2048, &answer).expect_err("refused");
            assert!(err.to_string().contains("exponent"), "{exponent:?}: {err}");
        }
        let mut short = modulus.clone();
        short[0] = 0x01;
        let answer = tlv::encoded(0x7F49, &[tlv::encoded(0x81, &short), tlv::encoded(0x82, &[1, 0, 1])].concat());
        assert!(spki_from_generate(alg::RSA_2048, &answer).is_err(), "a 2041-bit modulus is not RSA-2048");
    }
}
