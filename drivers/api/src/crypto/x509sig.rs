//! Signature algorithm identifiers of X.509, PKCS#10 and CMS for each mechanism, and checking a
//! signature over DER-encoded signed data (a TBSCertificate, a CertificationRequestInfo, CMS
//! signed attributes) given such an identifier.

use der::asn1::{Any, BitString, ObjectIdentifier};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;

use crate::crypto::keyinfo;
use crate::crypto::prepare::SignData;
use crate::crypto::sigenc;
use crate::crypto::software::RSA_PSS_SALT_LEN;
use crate::crypto::verify::{PssSaltLen, VerifyOptions, verify_signature_with};
use crate::error::{Error, Result};
use crate::mechanism::{DEFAULT_SM2_ID, HashAlg, KeyAlgorithm, Mechanism};

/// SM2 signature with SM3 (GM/T 0006 `SM2-with-SM3`), also GM/T 0010's signature algorithm.
pub const OID_SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
/// ecdsa-with-SHA256 (RFC 5758).
pub const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384 (RFC 5758).
pub const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// sha256WithRSAEncryption (RFC 4055).
pub const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// id-RSASSA-PSS (RFC 4055).
pub const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// id-sha256.
pub const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384.
pub const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// sha1WithRSAEncryption (RFC 8017), only verified or signed when a program brings SHA-1.
pub const OID_SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
/// sha224WithRSAEncryption (RFC 8017).
pub const OID_SHA224_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.14");
/// sha384WithRSAEncryption (RFC 8017).
pub const OID_SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption (RFC 8017).
pub const OID_SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
/// id-sha1 (RFC 3279).
pub const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-sha224.
pub const OID_SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.4");
/// id-sha512.
pub const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
/// SM3 (GM/T 0006).
pub const OID_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.401");

/// The AlgorithmIdentifier naming `mechanism` in a certificate, CSR or CMS SignerInfo.
pub fn signature_algorithm(mechanism: &Mechanism) -> Result<AlgorithmIdentifierOwned> {
    let (oid, parameters) = match mechanism {
        Mechanism::Sm2Sm3 { .. } => (OID_SM2_WITH_SM3, None),
        Mechanism::EcdsaSha256 => (OID_ECDSA_SHA256, None),
        Mechanism::EcdsaSha384 => (OID_ECDSA_SHA384, None),
        Mechanism::RsaPkcs1Sha256 => (OID_SHA256_WITH_RSA, Some(Any::null())),
        Mechanism::RsaPkcs1 { hash } => {
            let oid = match hash {
                HashAlg::Sha1 => OID_SHA1_WITH_RSA,
                HashAlg::Sha224 => OID_SHA224_WITH_RSA,
                HashAlg::Sha256 => OID_SHA256_WITH_RSA,
                HashAlg::Sha384 => OID_SHA384_WITH_RSA,
                HashAlg::Sha512 => OID_SHA512_WITH_RSA,
                HashAlg::Sm3 => return Err(Error::NotSupported("RSA PKCS#1 v1.5 with SM3".into())),
            };
            (oid, Some(Any::null()))
        }
        Mechanism::RsaPssSha256 => {
            let salt = u8::try_from(RSA_PSS_SALT_LEN).map_err(|_| Error::Crypto("PSS salt too long".into()))?;
            let params = rsa::pkcs1::RsaPssParams::<der::asn1::AnyRef<'_>>::new::<sha2::Sha256>(salt);
            let any = Any::encode_from(&params).map_err(|e| Error::Crypto(format!("PSS parameters: {e}")))?;
            (OID_RSASSA_PSS, Some(any))
        }
    };
    Ok(AlgorithmIdentifierOwned { oid, parameters })
}

/// The mechanism an AlgorithmIdentifier names for a key, plus verification options it implies
/// (the PSS salt length). SM2 gets `sm2_id`, or the GM/T 0009 default.
pub fn mechanism_for_algorithm(
    alg: &AlgorithmIdentifierOwned,
    key: KeyAlgorithm,
    sm2_id: Option<&[u8]>,
) -> Result<(Mechanism, VerifyOptions)> {
    let mut options = VerifyOptions::default();
    let mechanism = match alg.oid {
        o if o == OID_SM2_WITH_SM3 => Mechanism::Sm2Sm3 { user_id: sm2_id.unwrap_or(DEFAULT_SM2_ID).to_vec() },
        o if o == OID_ECDSA_SHA256 => Mechanism::EcdsaSha256,
        o if o == OID_ECDSA_SHA384 => Mechanism::EcdsaSha384,
        o if o == OID_SHA256_WITH_RSA => Mechanism::RsaPkcs1Sha256,
        o if o == OID_SHA1_WITH_RSA => Mechanism::RsaPkcs1 { hash: HashAlg::Sha1 },
        o if o == OID_SHA224_WITH_RSA => Mechanism::RsaPkcs1 { hash: HashAlg::Sha224 },
        o if o == OID_SHA384_WITH_RSA => Mechanism::RsaPkcs1 { hash: HashAlg::Sha384 },
        o if o == OID_SHA512_WITH_RSA => Mechanism::RsaPkcs1 { hash: HashAlg::Sha512 },
        o if o == OID_RSASSA_PSS => {
            let params = alg
                .parameters
                .as_ref()
                .ok_or_else(|| Error::InvalidInput("RSASSA-PSS without parameters".into()))?
                .to_der()
                .map_err(|e| Error::InvalidInput(format!("RSASSA-PSS parameters: {e}")))?;
            let params = rsa::pkcs1::RsaPssParams::<Any>::from_der(&params)
                .map_err(|e| Error::InvalidInput(format!("RSASSA-PSS parameters: {e}")))?;
            if params.hash.oid != OID_SHA256 {
                return Err(Error::NotSupported(format!(
                    "RSASSA-PSS with hash {}; ukey supports SHA-256",
                    params.hash.oid
                )));
            }
            options.pss_salt = PssSaltLen::Exactly(usize::from(params.salt_len));
            Mechanism::RsaPssSha256
        }
        // Some producers (OpenSSL for SM2 keys in CMS) name the key algorithm instead.
        o if o == keyinfo::OID_SM2 || (o == keyinfo::OID_EC_PUBLIC_KEY && key == KeyAlgorithm::Sm2) => {
            Mechanism::Sm2Sm3 { user_id: sm2_id.unwrap_or(DEFAULT_SM2_ID).to_vec() }
        }
        other => {
            return Err(Error::NotSupported(format!(
                "signature algorithm {other}; supported: SM2-with-SM3, ECDSA with SHA-256/384, RSA PKCS#1 v1.5 with SHA-1/224/256/384/512, RSA-PSS with SHA-256"
            )));
        }
    };
    mechanism.check_key(key)?;
    Ok((mechanism, options))
}

/// The BIT STRING value of an X.509 / PKCS#10 signature from a carrier's raw signature
/// (EC and SM2: DER `SEQUENCE { r, s }`; RSA: the block itself).
pub fn signature_bits(key: KeyAlgorithm, raw: &[u8]) -> Result<Vec<u8>> {
    sigenc::encode_signature(key, raw, sigenc::SignatureFormat::Der)
}

/// Wraps signature bytes in a BIT STRING.
pub fn bit_string(bytes: &[u8]) -> Result<BitString> {
    BitString::from_bytes(bytes).map_err(|e| Error::Crypto(format!("signature does not fit a BIT STRING: {e}")))
}

/// Verifies `signature` over `signed_der` made by `signer_spki` with the algorithm `alg`.
pub fn verify_signed_data(
    signer_spki: &[u8],
    alg: &AlgorithmIdentifierOwned,
    signed_der: &[u8],
    signature: &[u8],
    sm2_id: Option<&[u8]>,
) -> Result<()> {
    let key = keyinfo::spki_algorithm(signer_spki)?;
    let (mechanism, options) = mechanism_for_algorithm(alg, key, sm2_id)?;
    verify_signature_with(signer_spki, &mechanism, SignData::Message(signed_der), signature, options)
}

/// The AlgorithmIdentifier of a digest algorithm as CMS names it.
pub fn digest_algorithm(hash: HashAlg) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: hash_oid(hash), parameters: None }
}

/// The object identifier of a hash function.
pub fn hash_oid(hash: HashAlg) -> ObjectIdentifier {
    match hash {
        HashAlg::Sm3 => OID_SM3,
        HashAlg::Sha256 => OID_SHA256,
        HashAlg::Sha384 => OID_SHA384,
        HashAlg::Sha1 => OID_SHA1,
        HashAlg::Sha224 => OID_SHA224,
        HashAlg::Sha512 => OID_SHA512,
    }
}

/// The hash function an object identifier names, if ukey knows it.
pub fn hash_for_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
    [HashAlg::Sm3, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha1, HashAlg::Sha224, HashAlg::Sha512]
        .into_iter()
        .find(|h| hash_oid(*h) == *oid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::MechanismKind;

    #[test]
    fn every_mechanism_round_trips_through_its_identifier() {
        for kind in MechanismKind::ALL {
            let mech = kind.with_default_params();
            let key = match kind {
                MechanismKind::Sm2Sm3 => KeyAlgorithm::Sm2,
                MechanismKind::EcdsaSha256 | MechanismKind::EcdsaSha384 => KeyAlgorithm::P256,
                _ => KeyAlgorithm::Rsa { bits: 2048 },
            };
            let alg = signature_algorithm(&mech).unwrap();
            let (back, options) = mechanism_for_algorithm(&alg, key, None).unwrap();
            // sha256WithRSAEncryption reads back as the mechanism that always named it.
            let expected =
                if mech == (Mechanism::RsaPkcs1 { hash: HashAlg::Sha256 }) { Mechanism::RsaPkcs1Sha256 } else { mech };
            assert_eq!(back, expected);
            if kind == MechanismKind::RsaPssSha256 {
                assert_eq!(options.pss_salt, PssSaltLen::Exactly(32));
            }
        }
    }

    #[test]
    fn mismatched_key_is_refused() {
        let alg = signature_algorithm(&Mechanism::EcdsaSha256).unwrap();
        assert!(mechanism_for_algorithm(&alg, KeyAlgorithm::Sm2, None).is_err());
    }
}
