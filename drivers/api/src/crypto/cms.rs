//! CMS / PKCS#7 SignedData (RFC 5652), attached or detached, signed through a [`KeySigner`] so
//! the key can stay on its carrier, with the signed attributes content type, message digest and
//! signing time, and the signer's certificate included.
//!
//! Two profiles: [`CmsProfile::Rfc5652`] (PKCS#7 OIDs; what OpenSSL, browsers and most
//! verifiers read; SM2 signatures named SM2-with-SM3) and [`CmsProfile::Gmt0010`]
//! (GM/T 0010 / GB/T 35275 OIDs: data 1.2.156.10197.6.1.4.2.1, signedData ...4.2.2, digest SM3,
//! signature SM2-1 1.2.156.10197.1.301.1), for Chinese verifiers that insist on them.
//! SM2 signatures use SM3(Z ‖ signed attributes) with the signer's distinguishing id (GM/T 0009
//! default unless the mechanism names another).
//!
//! The RustCrypto `cms` crate supplies the ASN.1 types; the structure is assembled here because
//! its builder wants an in-process signer and has no SM3.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, ObjectIdentifier, OctetString, OctetStringRef, SetOfVec};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::time::Time;

use crate::crypto::keyinfo;
use crate::crypto::pem;
use crate::crypto::prepare::SignData;
use crate::crypto::signer::KeySigner;
use crate::crypto::verify::{VerifyOptions, verify_signature_with};
use crate::crypto::x509sig;
use crate::error::{Error, Result};
use crate::mechanism::{DEFAULT_SM2_ID, HashAlg, KeyAlgorithm, Mechanism};

/// id-data (PKCS#7).
pub const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData (PKCS#7).
pub const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// GM/T 0010 data.
pub const OID_GM_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.6.1.4.2.1");
/// GM/T 0010 signedData.
pub const OID_GM_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.6.1.4.2.2");
/// SM2-1, the SM2 signature algorithm as GM/T 0010 names it in SignerInfo.
pub const OID_SM2_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301.1");
/// id-contentType attribute.
pub const OID_ATTR_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest attribute.
pub const OID_ATTR_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime attribute.
pub const OID_ATTR_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
/// rsaEncryption, which many producers (OpenSSL among them) put in SignerInfo for PKCS#1 v1.5.
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Largest CMS message accepted for verification.
pub const MAX_CMS_LEN: usize = 64 * 1024 * 1024;

/// Which OIDs a SignedData uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CmsProfile {
    /// RFC 5652 / PKCS#7 OIDs, the interoperable default.
    #[default]
    Rfc5652,
    /// GM/T 0010 / GB/T 35275 OIDs (SM2 keys only).
    Gmt0010,
}

/// How to build a SignedData.
#[derive(Debug, Clone)]
pub struct CmsOptions {
    /// Leave the content out (detached signature); the verifier supplies it.
    pub detached: bool,
    /// OID profile.
    pub profile: CmsProfile,
    /// Signature mechanism; default: the key's default (SM2 with the GM/T 0009 id, as GM/T 0010
    /// requires). OpenSSL 3.0's `cms -verify` checks SM2 with an EMPTY id instead; for it, use
    /// [`CmsOptions::openssl_sm2`].
    pub mechanism: Option<Mechanism>,
    /// Signing time attribute; default: now.
    pub signing_time: Option<SystemTime>,
    /// More certificates to include (the chain), DER.
    pub extra_certificates: Vec<Vec<u8>>,
}

impl Default for CmsOptions {
    fn default() -> Self {
        CmsOptions {
            detached: true,
            profile: CmsProfile::Rfc5652,
            mechanism: None,
            signing_time: None,
            extra_certificates: Vec::new(),
        }
    }
}

impl CmsOptions {
    /// SM2 signatures with the empty distinguishing id, the one OpenSSL 3.0 `cms -verify` uses
    /// (GM/T 0010 verifiers expect the default id; use this only for OpenSSL consumers).
    pub fn openssl_sm2(detached: bool) -> Self {
        CmsOptions { detached, mechanism: Some(Mechanism::Sm2Sm3 { user_id: Vec::new() }), ..Default::default() }
    }
}

/// What a verified SignedData says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmsVerified {
    /// The signer's certificate, DER (its chain is NOT validated here; see [`verify_cms_with_ca`]).
    pub signer_certificate: Vec<u8>,
    /// The signed content (attached, or the detached content given).
    pub content: Vec<u8>,
    /// The signing time attribute, seconds since the Unix epoch, if present.
    pub signing_time: Option<i64>,
    /// The OID profile found.
    pub profile: CmsProfile,
    /// The mechanism of the signature.
    pub mechanism: Mechanism,
}

/// Signs `content` into a CMS SignedData with the signer's `certificate` (DER or PEM). Returns
/// the DER ContentInfo (`openssl cms -inform DER`).
pub fn sign_cms(signer: &dyn KeySigner, certificate: &[u8], content: &[u8], options: &CmsOptions) -> Result<Vec<u8>> {
    let cert_der = pem::der_from_pem_or_der(certificate, pem::CERTIFICATE)?;
    let cert = Certificate::from_der(&cert_der)
        .map_err(|e| Error::InvalidInput(format!("the signer certificate is not X.509: {e}")))?;
    let cert_key = cert.tbs_certificate().subject_public_key_info().to_der().map_err(asn1_err)?;
    if cert_key != signer.public_key_spki() {
        return Err(Error::InvalidInput("the certificate does not belong to the signing key".into()));
    }
    let key_alg = signer.algorithm();
    let mechanism = options.mechanism.clone().unwrap_or_else(|| key_alg.default_mechanism());
    mechanism.check_key(key_alg)?;
    if options.profile == CmsProfile::Gmt0010 && key_alg != KeyAlgorithm::Sm2 {
        return Err(Error::NotSupported(format!("the GM/T 0010 profile is for SM2 keys; this is a {key_alg} key")));
    }
    let (data_oid, signed_data_oid) = match options.profile {
        CmsProfile::Rfc5652 => (OID_DATA, OID_SIGNED_DATA),
        CmsProfile::Gmt0010 => (OID_GM_DATA, OID_GM_SIGNED_DATA),
    };
    let hash = mechanism.hash();
    let digest_alg = x509sig::digest_algorithm(hash);

    let signing_time = options.signing_time.unwrap_or_else(SystemTime::now);
    let attrs = vec![
        attribute(OID_ATTR_CONTENT_TYPE, Any::encode_from(&data_oid).map_err(asn1_err)?)?,
        attribute(
            OID_ATTR_MESSAGE_DIGEST,
            Any::encode_from(&OctetStringRef::new(&hash.digest(content)).map_err(asn1_err)?).map_err(asn1_err)?,
        )?,
        attribute(OID_ATTR_SIGNING_TIME, Any::encode_from(&time_of(signing_time)?).map_err(asn1_err)?)?,
    ];
    let signed_attrs = SignedAttributes::try_from(attrs).map_err(asn1_err)?;
    let to_sign = signed_attrs.to_der().map_err(asn1_err)?;
    let input = crate::crypto::prepare_input(&mechanism, Some(signer.public_key_spki()), SignData::Message(&to_sign))?;
    let raw = signer.sign(&mechanism, &input)?;
    let signature = x509sig::signature_bits(key_alg, &raw)?;

    let signature_algorithm = match (&mechanism, options.profile) {
        (Mechanism::Sm2Sm3 { .. }, CmsProfile::Gmt0010) => {
            AlgorithmIdentifierOwned { oid: OID_SM2_1, parameters: None }
        }
        _ => x509sig::signature_algorithm(&mechanism)?,
    };
    let tbs = cert.tbs_certificate();
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        digest_alg: digest_alg.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm,
        signature: OctetString::new(signature).map_err(asn1_err)?,
        unsigned_attrs: None,
    };

    let mut certs = SetOfVec::new();
    certs.insert(CertificateChoices::Certificate(cert.clone())).map_err(asn1_err)?;
    for extra in &options.extra_certificates {
        let c = Certificate::from_der(&pem::der_from_pem_or_der(extra, pem::CERTIFICATE)?)
            .map_err(|e| Error::InvalidInput(format!("an extra certificate is not X.509: {e}")))?;
        if c != cert {
            certs.insert(CertificateChoices::Certificate(c)).map_err(asn1_err)?;
        }
    }
    let econtent = if options.detached {
        None
    } else {
        Some(Any::encode_from(&OctetStringRef::new(content).map_err(asn1_err)?).map_err(asn1_err)?)
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(digest_alg).map_err(asn1_err)?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer_info).map_err(asn1_err)?;
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo { econtent_type: data_oid, econtent },
        certificates: Some(CertificateSet(certs)),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    let info =
        ContentInfo { content_type: signed_data_oid, content: Any::encode_from(&signed_data).map_err(asn1_err)? };
    info.to_der().map_err(asn1_err)
}

/// Verifies every signer of a SignedData (DER, or PEM `CMS` / `PKCS7`) over its attached content
/// or `detached_content`: message digest, content type, and the signature with the public key of
/// the included signer certificate. SM2 uses `sm2_id` when given; otherwise the GM/T 0009
/// default id, or else the empty id OpenSSL 3.0 uses in CMS (the id found is in the returned
/// mechanism). Does not validate the certificate chain.
pub fn verify_cms(cms: &[u8], detached_content: Option<&[u8]>, sm2_id: Option<&[u8]>) -> Result<CmsVerified> {
    if cms.len() > MAX_CMS_LEN {
        return Err(Error::InvalidInput(format!("the CMS message is larger than {MAX_CMS_LEN} bytes")));
    }
    let der = cms_der(cms)?;
    let info =
        ContentInfo::from_der(&der).map_err(|e| Error::InvalidInput(format!("not a DER CMS ContentInfo: {e}")))?;
    let profile = match info.content_type {
        o if o == OID_SIGNED_DATA => CmsProfile::Rfc5652,
        o if o == OID_GM_SIGNED_DATA => CmsProfile::Gmt0010,
        other => return Err(Error::InvalidInput(format!("CMS content type {other} is not SignedData"))),
    };
    let signed: SignedData =
        info.content.decode_as().map_err(|e| Error::InvalidInput(format!("malformed SignedData: {e}")))?;
    let econtent_type = signed.encap_content_info.econtent_type;
    let attached = match &signed.encap_content_info.econtent {
        Some(any) => Some(
            any.decode_as::<OctetString>()
                .map_err(|e| Error::InvalidInput(format!("encapsulated content is not an OCTET STRING: {e}")))?
                .into_bytes()
                .into_vec(),
        ),
        None => None,
    };
    let content = match (attached, detached_content) {
        (Some(a), Some(d)) if a.as_slice() != d => {
            return Err(Error::Crypto("the content given differs from the content inside the signature".into()));
        }
        (Some(a), _) => a,
        (None, Some(d)) => d.to_vec(),
        (None, None) => {
            return Err(Error::InvalidInput("this is a detached signature: give the signed content too".into()));
        }
    };
    let certificates: Vec<Certificate> = signed
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(cert) => Some(cert.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut result = None;
    for si in signed.signer_infos.0.iter() {
        let cert = find_signer(&certificates, &si.sid)?;
        let spki = cert.tbs_certificate().subject_public_key_info().to_der().map_err(asn1_err)?;
        let key_alg = keyinfo::spki_algorithm(&spki)?;
        let hash = hash_of(&si.digest_alg)?;
        // SM2 without a named id: the GM/T 0009 default first, then the EMPTY id that OpenSSL 3.0
        // uses for SM2 in CMS, so messages from either kind of producer verify.
        let ids: Vec<Option<&[u8]>> = match (key_alg, sm2_id) {
            (KeyAlgorithm::Sm2, None) => vec![Some(DEFAULT_SM2_ID), Some(b"")],
            _ => vec![sm2_id],
        };
        let mut outcome = Err(Error::Crypto("signature does not verify".into()));
        for id in ids {
            let (mechanism, options) = cms_mechanism(&si.signature_algorithm, hash, key_alg, id)?;
            outcome = verify_signer_info(si, &spki, &mechanism, options, econtent_type, hash, &content)
                .map(|signing_time| (mechanism, signing_time));
            if outcome.is_ok() {
                break;
            }
        }
        let (mechanism, signing_time) = outcome?;
        result = Some(CmsVerified {
            signer_certificate: cert.to_der().map_err(asn1_err)?,
            content: content.clone(),
            signing_time,
            profile,
            mechanism,
        });
    }
    result.ok_or_else(|| Error::InvalidInput("the SignedData has no signer".into()))
}

/// Checks one SignerInfo; returns its signing time.
fn verify_signer_info(
    si: &SignerInfo,
    spki: &[u8],
    mechanism: &Mechanism,
    options: VerifyOptions,
    econtent_type: ObjectIdentifier,
    hash: HashAlg,
    content: &[u8],
) -> Result<Option<i64>> {
    let signature = si.signature.as_bytes();
    match &si.signed_attrs {
        Some(attrs) => {
            check_signed_attributes(attrs, econtent_type, &hash.digest(content))?;
            let signed_der = attrs.to_der().map_err(asn1_err)?;
            verify_signature_with(spki, mechanism, SignData::Message(&signed_der), signature, options)?;
            signing_time_of(attrs)
        }
        None => {
            verify_signature_with(spki, mechanism, SignData::Message(content), signature, options)?;
            Ok(None)
        }
    }
}

/// [`verify_cms`], then checks that the signer certificate was issued by `ca_certificate` (DER or
/// PEM) and is valid now.
pub fn verify_cms_with_ca(
    cms: &[u8],
    detached_content: Option<&[u8]>,
    ca_certificate: &[u8],
    sm2_id: Option<&[u8]>,
) -> Result<CmsVerified> {
    let verified = verify_cms(cms, detached_content, sm2_id)?;
    let ca = crate::crypto::cert::parse_certificate(ca_certificate)?;
    crate::crypto::certbuild::verify_certificate_signature(&verified.signer_certificate, &ca.public_key)
        .map_err(|e| Error::Crypto(format!("the signer certificate was not issued by this CA: {e}")))?;
    let signer = crate::crypto::cert::parse_certificate(&verified.signer_certificate)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    if now < signer.not_before || now > signer.not_after {
        return Err(Error::Crypto("the signer certificate is not valid at this time".into()));
    }
    Ok(verified)
}

/// The CMS message as DER, from DER or PEM (`CMS`, `PKCS7`).
fn cms_der(bytes: &[u8]) -> Result<Vec<u8>> {
    if !pem::is_pem(bytes) {
        return Ok(bytes.to_vec());
    }
    pem::pem_blocks(bytes)?
        .into_iter()
        .find(|(label, _)| label == pem::CMS || label == "PKCS7")
        .map(|(_, der)| der)
        .ok_or_else(|| Error::InvalidInput("the PEM input has no CMS or PKCS7 block".into()))
}

fn find_signer<'c>(certificates: &'c [Certificate], sid: &SignerIdentifier) -> Result<&'c Certificate> {
    let found = certificates.iter().find(|c| match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            c.tbs_certificate().issuer() == &ias.issuer && c.tbs_certificate().serial_number() == &ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => c
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .is_some_and(|(_, own)| own.0 == ski.0),
    });
    found.ok_or_else(|| {
        Error::InvalidInput(
            "the signer's certificate is not included in the CMS message; ukey needs it to verify".into(),
        )
    })
}

fn hash_of(alg: &AlgorithmIdentifierOwned) -> Result<HashAlg> {
    match alg.oid {
        o if o == x509sig::OID_SHA256 => Ok(HashAlg::Sha256),
        o if o == x509sig::OID_SHA384 => Ok(HashAlg::Sha384),
        o if o == x509sig::OID_SM3 => Ok(HashAlg::Sm3),
        other => Err(Error::NotSupported(format!("CMS digest algorithm {other}; supported: SHA-256, SHA-384, SM3"))),
    }
}

/// The mechanism of a SignerInfo: its signature algorithm, interpreted with its digest algorithm
/// (producers name RSA and EC keys by the key OID, SM2 by SM2-with-SM3, SM2-1 or the curve).
fn cms_mechanism(
    alg: &AlgorithmIdentifierOwned,
    hash: HashAlg,
    key: KeyAlgorithm,
    sm2_id: Option<&[u8]>,
) -> Result<(Mechanism, VerifyOptions)> {
    let by_key = alg.oid == OID_RSA_ENCRYPTION
        || alg.oid == keyinfo::OID_EC_PUBLIC_KEY
        || alg.oid == OID_SM2_1
        || alg.oid == keyinfo::OID_SM2;
    let (mechanism, options) = if by_key {
        let mechanism = match (key, hash) {
            (KeyAlgorithm::Sm2, HashAlg::Sm3) => {
                Mechanism::Sm2Sm3 { user_id: sm2_id.unwrap_or(DEFAULT_SM2_ID).to_vec() }
            }
            (KeyAlgorithm::P256 | KeyAlgorithm::P384, HashAlg::Sha256) => Mechanism::EcdsaSha256,
            (KeyAlgorithm::P256 | KeyAlgorithm::P384, HashAlg::Sha384) => Mechanism::EcdsaSha384,
            (KeyAlgorithm::Rsa { .. }, HashAlg::Sha256) => Mechanism::RsaPkcs1Sha256,
            (k, h) => {
                return Err(Error::NotSupported(format!(
                    "a {k} signature with digest {}; ukey supports SM2/SM3, ECDSA/SHA-256/384, RSA/SHA-256",
                    h.as_str()
                )));
            }
        };
        (mechanism, VerifyOptions::default())
    } else {
        x509sig::mechanism_for_algorithm(alg, key, sm2_id)?
    };
    if mechanism.hash() != hash {
        return Err(Error::InvalidInput(format!(
            "the signature algorithm ({mechanism}) does not match the digest algorithm ({})",
            hash.as_str()
        )));
    }
    mechanism.check_key(key)?;
    Ok((mechanism, options))
}

fn check_signed_attributes(attrs: &SignedAttributes, econtent_type: ObjectIdentifier, digest: &[u8]) -> Result<()> {
    let content_type: ObjectIdentifier = single_value(attrs, OID_ATTR_CONTENT_TYPE, "content type")?
        .decode_as()
        .map_err(|e| Error::InvalidInput(format!("content-type attribute: {e}")))?;
    if content_type != econtent_type {
        return Err(Error::Crypto(format!(
            "the signed content-type attribute ({content_type}) does not match the content ({econtent_type})"
        )));
    }
    let md: OctetString = single_value(attrs, OID_ATTR_MESSAGE_DIGEST, "message digest")?
        .decode_as()
        .map_err(|e| Error::InvalidInput(format!("message-digest attribute: {e}")))?;
    if md.as_bytes() != digest {
        return Err(Error::Crypto(
            "signature does not verify: the content's digest differs from the signed message digest (content changed?)"
                .into(),
        ));
    }
    Ok(())
}

fn single_value<'a>(attrs: &'a SignedAttributes, oid: ObjectIdentifier, what: &str) -> Result<&'a Any> {
    let attr = attrs
        .iter()
        .find(|a| a.oid == oid)
        .ok_or_else(|| Error::InvalidInput(format!("the signed attributes lack the {what} attribute")))?;
    if attr.values.len() != 1 {
        return Err(Error::InvalidInput(format!("the {what} attribute must have exactly one value")));
    }
    attr.values.get(0).ok_or_else(|| Error::InvalidInput(format!("the {what} attribute is empty")))
}

fn signing_time_of(attrs: &SignedAttributes) -> Result<Option<i64>> {
    match attrs.iter().find(|a| a.oid == OID_ATTR_SIGNING_TIME) {
        None => Ok(None),
        Some(_) => {
            let time: Time = single_value(attrs, OID_ATTR_SIGNING_TIME, "signing time")?
                .decode_as()
                .map_err(|e| Error::InvalidInput(format!("signing-time attribute: {e}")))?;
            Ok(Some(i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)))
        }
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute> {
    let mut values = SetOfVec::new();
    values.insert(value).map_err(asn1_err)?;
    Ok(Attribute { oid, values })
}

fn time_of(t: SystemTime) -> Result<Time> {
    let secs =
        t.duration_since(UNIX_EPOCH).map_err(|_| Error::InvalidInput("signing time before 1970".into()))?.as_secs();
    Time::try_from(UNIX_EPOCH + Duration::from_secs(secs)).map_err(asn1_err)
}

fn asn1_err(e: der::Error) -> Error {
    Error::Crypto(format!("CMS encoding: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::certbuild::{CertificateOptions, self_signed};
    use crate::crypto::name::parse_name;
    use crate::crypto::software::SoftwareKey;

    fn signer(alg: KeyAlgorithm) -> (SoftwareKey, Vec<u8>) {
        let key = SoftwareKey::generate(alg).unwrap();
        let cert = self_signed(&key, &parse_name("CN=Signer").unwrap(), &CertificateOptions::end_entity(1)).unwrap();
        (key, cert)
    }

    #[test]
    fn attached_and_detached_round_trip() {
        for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256, KeyAlgorithm::P384] {
            let (key, cert) = signer(alg);
            let detached = sign_cms(&key, &cert, b"hello cms", &CmsOptions::default()).unwrap();
            let v = verify_cms(&detached, Some(b"hello cms"), None).unwrap();
            assert_eq!(v.signer_certificate, cert);
            assert!(v.signing_time.is_some());
            assert!(verify_cms(&detached, None, None).is_err());
            let err = verify_cms(&detached, Some(b"hello CMS"), None).unwrap_err();
            assert!(err.to_string().contains("digest differs"), "{err}");

            let attached =
                sign_cms(&key, &cert, b"hello cms", &CmsOptions { detached: false, ..Default::default() }).unwrap();
            assert_eq!(verify_cms(&attached, None, None).unwrap().content, b"hello cms");
        }
    }

    #[test]
    fn gmt0010_profile_for_sm2_only() {
        let (key, cert) = signer(KeyAlgorithm::Sm2);
        let opts = CmsOptions { profile: CmsProfile::Gmt0010, detached: false, ..Default::default() };
        let der = sign_cms(&key, &cert, b"gm", &opts).unwrap();
        let v = verify_cms(&der, None, None).unwrap();
        assert_eq!(v.profile, CmsProfile::Gmt0010);
        // The id binds: verifying with another id fails.
        assert!(verify_cms(&der, None, Some(b"other")).is_err());
        let (p256, p256_cert) = signer(KeyAlgorithm::P256);
        assert!(matches!(sign_cms(&p256, &p256_cert, b"x", &opts), Err(Error::NotSupported(_))));
    }

    #[test]
    fn certificate_must_match_the_key() {
        let (key, _) = signer(KeyAlgorithm::P256);
        let (_, other_cert) = signer(KeyAlgorithm::P256);
        let err = sign_cms(&key, &other_cert, b"x", &CmsOptions::default()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
    }
}
