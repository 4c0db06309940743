//! X.509 certificates for demos and tests: self-signed, or issued by a CA key behind a
//! [`KeySigner`] (which may live on a carrier). Subject, validity, a random serial, key usage,
//! basic constraints, subject and authority key identifiers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use getrandom::SysRng;
use rand_core::TryRng;
use sha2::{Digest, Sha256};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey, SubjectPublicKeyInfoOwned,
    SubjectPublicKeyInfoRef,
};
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::crypto::csr::verify_csr;
use crate::crypto::signer::KeySigner;
use crate::crypto::x509sig;
use crate::error::{Error, Result};
use crate::mechanism::Mechanism;

/// id-kp-clientAuth (RFC 5280).
pub const EKU_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
/// id-kp-emailProtection (RFC 5280), what S/MIME and `openssl cms -verify` look for.
pub const EKU_EMAIL_PROTECTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");

/// What to put in a certificate besides subject and key.
#[derive(Debug, Clone)]
pub struct CertificateOptions {
    /// Start of validity; default: now minus five minutes (tolerates clock skew).
    pub not_before: Option<SystemTime>,
    /// Length of validity.
    pub validity: Duration,
    /// A CA certificate (basicConstraints cA, keyCertSign and cRLSign).
    pub ca: bool,
    /// Path length constraint of a CA.
    pub path_len: Option<u8>,
    /// Key usage; default: CA → keyCertSign, cRLSign, digitalSignature; otherwise
    /// digitalSignature, nonRepudiation.
    pub key_usage: Option<Vec<KeyUsages>>,
    /// Extended key usages (none by default, which restricts nothing).
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// Signature mechanism of the issuer; default: the issuer key's default (SM2: GM/T 0009 id).
    pub mechanism: Option<Mechanism>,
}

impl Default for CertificateOptions {
    fn default() -> Self {
        CertificateOptions {
            not_before: None,
            validity: Duration::from_secs(365 * 24 * 3600),
            ca: false,
            path_len: None,
            key_usage: None,
            extended_key_usage: Vec::new(),
            mechanism: None,
        }
    }
}

impl CertificateOptions {
    /// Options for a CA certificate valid for `days`.
    pub fn ca(days: u64) -> Self {
        CertificateOptions { ca: true, validity: Duration::from_secs(days * 24 * 3600), ..Default::default() }
    }

    /// Options for an end-entity certificate valid for `days`.
    pub fn end_entity(days: u64) -> Self {
        CertificateOptions { validity: Duration::from_secs(days * 24 * 3600), ..Default::default() }
    }
}

/// A self-signed certificate for the signer's own key. Returns DER.
pub fn self_signed(signer: &dyn KeySigner, subject: &Name, options: &CertificateOptions) -> Result<Vec<u8>> {
    build(signer, subject, subject, signer.public_key_spki(), options)
}

/// A certificate for `subject_public_key` (DER SPKI) issued by the CA whose certificate is
/// `issuer_certificate` (DER) and whose key is `issuer`. Returns DER.
pub fn issue(
    issuer: &dyn KeySigner,
    issuer_certificate: &[u8],
    subject: &Name,
    subject_public_key: &[u8],
    options: &CertificateOptions,
) -> Result<Vec<u8>> {
    let ca = Certificate::from_der(issuer_certificate)
        .map_err(|e| Error::InvalidInput(format!("the issuer certificate is not DER X.509: {e}")))?;
    let ca_key = ca
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| Error::InvalidInput(format!("issuer public key: {e}")))?;
    if ca_key != issuer.public_key_spki() {
        return Err(Error::InvalidInput("the issuer key does not belong to the issuer certificate".into()));
    }
    build(issuer, ca.tbs_certificate().subject(), subject, subject_public_key, options)
}

/// A certificate for the subject and key of a PKCS#10 request (PEM or DER), after checking the
/// request's self-signature (SM2: with the GM/T 0009 default id).
pub fn issue_from_csr(
    issuer: &dyn KeySigner,
    issuer_certificate: &[u8],
    csr: &[u8],
    options: &CertificateOptions,
) -> Result<Vec<u8>> {
    let request = verify_csr(csr, None)?;
    issue(issuer, issuer_certificate, &request.subject, &request.public_key, options)
}

/// Checks that `certificate` (DER) was signed by `issuer_public_key` (DER SPKI); SM2 with the
/// GM/T 0009 default id.
pub fn verify_certificate_signature(certificate: &[u8], issuer_public_key: &[u8]) -> Result<()> {
    let cert = Certificate::from_der(certificate)
        .map_err(|e| Error::InvalidInput(format!("not a DER X.509 certificate: {e}")))?;
    let tbs = cert.tbs_certificate().to_der().map_err(|e| Error::InvalidInput(format!("certificate body: {e}")))?;
    let signature = cert
        .signature()
        .as_bytes()
        .ok_or_else(|| Error::InvalidInput("certificate signature has unused bits".into()))?;
    x509sig::verify_signed_data(issuer_public_key, cert.signature_algorithm(), &tbs, signature, None)
}

fn build(
    signer: &dyn KeySigner,
    issuer: &Name,
    subject: &Name,
    subject_public_key: &[u8],
    options: &CertificateOptions,
) -> Result<Vec<u8>> {
    let key_alg = signer.algorithm();
    let mechanism = options.mechanism.clone().unwrap_or_else(|| key_alg.default_mechanism());
    mechanism.check_key(key_alg)?;
    crate::crypto::keyinfo::spki_algorithm(subject_public_key)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(subject_public_key)
        .map_err(|e| Error::InvalidInput(format!("subject public key: {e}")))?;

    let not_before = options.not_before.unwrap_or_else(|| SystemTime::now() - Duration::from_secs(300));
    let not_before = whole_seconds(not_before)?;
    let not_after = whole_seconds(not_before + options.validity)?;
    let time = |t: SystemTime| Time::try_from(t).map_err(|e| Error::InvalidInput(format!("validity date: {e}")));
    let validity = Validity::new(time(not_before)?, time(not_after)?);

    let profile = Profile {
        subject: subject.clone(),
        issuer: issuer.clone(),
        ca: options.ca,
        path_len: options.path_len,
        key_usage: options.key_usage.clone().unwrap_or_else(|| {
            if options.ca {
                vec![KeyUsages::KeyCertSign, KeyUsages::CRLSign, KeyUsages::DigitalSignature]
            } else {
                vec![KeyUsages::DigitalSignature, KeyUsages::NonRepudiation]
            }
        }),
        extended_key_usage: options.extended_key_usage.clone(),
    };
    let build_err = |e: x509_cert::builder::Error| Error::Crypto(format!("certificate building failed: {e}"));
    let mut builder = CertificateBuilder::new(profile, random_serial()?, validity, spki).map_err(build_err)?;
    let adapter = IssuerKey {
        public_key: IssuerPublicKey(signer.public_key_spki().to_vec()),
        algorithm: x509sig::signature_algorithm(&mechanism)?,
    };
    let tbs = builder.finalize(&adapter).map_err(build_err)?;
    let (_, signature) = crate::crypto::signer::sign_for_x509(signer, &mechanism, &tbs)?;
    let cert = builder.assemble(signature, &adapter).map_err(build_err)?;
    cert.to_der().map_err(|e| Error::Crypto(format!("certificate encoding failed: {e}")))
}

fn whole_seconds(t: SystemTime) -> Result<SystemTime> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::InvalidInput("validity dates before 1970 are not supported".into()))?
        .as_secs();
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// 16 random bytes, positive and without a leading zero (RFC 5280: at most 20 octets).
fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    SysRng.try_fill_bytes(&mut bytes).map_err(|e| Error::Crypto(format!("the system random generator failed: {e}")))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::new(&bytes).map_err(|e| Error::Crypto(format!("serial number: {e}")))
}

/// RFC 7093 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits.
fn key_identifier(spki: SubjectPublicKeyInfoRef<'_>) -> der::Result<OctetString> {
    let digest = Sha256::digest(spki.subject_public_key.raw_bytes());
    OctetString::new(digest.get(..20).unwrap_or_default().to_vec())
}

struct Profile {
    subject: Name,
    issuer: Name,
    ca: bool,
    path_len: Option<u8>,
    key_usage: Vec<KeyUsages>,
    extended_key_usage: Vec<ObjectIdentifier>,
}

fn extension<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> x509_cert::builder::Result<Extension> {
    Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        use der::oid::AssociatedOid;
        let mut out = Vec::new();
        let bc = BasicConstraints { ca: self.ca, path_len_constraint: if self.ca { self.path_len } else { None } };
        out.push(extension(BasicConstraints::OID, true, &bc)?);
        if !self.key_usage.is_empty() {
            let mut flags = flagset::FlagSet::<KeyUsages>::default();
            for bit in &self.key_usage {
                flags |= *bit;
            }
            out.push(extension(KeyUsage::OID, true, &KeyUsage(flags))?);
        }
        if !self.extended_key_usage.is_empty() {
            let eku = ExtendedKeyUsage(self.extended_key_usage.clone());
            out.push(extension(ExtendedKeyUsage::OID, false, &eku)?);
        }
        let ski = SubjectKeyIdentifier(key_identifier(spk)?);
        out.push(extension(SubjectKeyIdentifier::OID, false, &ski)?);
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(key_identifier(issuer_spk)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        out.push(extension(AuthorityKeyIdentifier::OID, false, &aki)?);
        Ok(out)
    }
}

/// The issuer as x509-cert's builder wants to see it: a public key and a signature algorithm.
/// The signature itself is made outside the builder, through [`KeySigner`].
struct IssuerKey {
    public_key: IssuerPublicKey,
    algorithm: AlgorithmIdentifierOwned,
}

#[derive(Clone)]
struct IssuerPublicKey(Vec<u8>);

impl EncodePublicKey for IssuerPublicKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.as_slice())?)
    }
}

impl signature::Keypair for IssuerKey {
    type VerifyingKey = IssuerPublicKey;

    fn verifying_key(&self) -> IssuerPublicKey {
        self.public_key.clone()
    }
}

impl DynSignatureAlgorithmIdentifier for IssuerKey {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.algorithm.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::cert::parse_certificate;
    use crate::crypto::name::parse_name;
    use crate::crypto::software::SoftwareKey;
    use crate::mechanism::KeyAlgorithm;

    #[test]
    fn self_signed_and_issued_verify() {
        for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256, KeyAlgorithm::P384] {
            let ca_key = SoftwareKey::generate(alg).unwrap();
            let ca =
                self_signed(&ca_key, &parse_name("CN=Test CA,O=ukey").unwrap(), &CertificateOptions::ca(30)).unwrap();
            verify_certificate_signature(&ca, ca_key.public_key_spki()).unwrap();
            let info = parse_certificate(&ca).unwrap();
            assert_eq!(info.subject, "CN=Test CA,O=ukey");
            assert_eq!(info.issuer, info.subject);
            assert!(info.key_usage.contains(&"keyCertSign".to_string()));
            assert_eq!(info.key_algorithm, Some(alg));
            assert!(info.not_after - info.not_before >= 30 * 86400);

            let user = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
            let subject = parse_name("CN=Alice,O=ukey").unwrap();
            let cert =
                issue(&ca_key, &ca, &subject, user.public_key_spki(), &CertificateOptions::end_entity(10)).unwrap();
            verify_certificate_signature(&cert, ca_key.public_key_spki()).unwrap();
            assert!(verify_certificate_signature(&cert, user.public_key_spki()).is_err());
            let info = parse_certificate(&cert).unwrap();
            assert_eq!(info.issuer, "CN=Test CA,O=ukey");
            assert_eq!(info.public_key, user.public_key_spki());
            assert_eq!(info.key_usage, vec!["digitalSignature", "nonRepudiation"]);
        }
    }

    #[test]
    fn issuer_key_must_match_issuer_certificate() {
        let ca_key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let other = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let ca = self_signed(&ca_key, &parse_name("CN=CA").unwrap(), &CertificateOptions::ca(1)).unwrap();
        let err =
            issue(&other, &ca, &parse_name("CN=x").unwrap(), other.public_key_spki(), &Default::default()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
    }

    #[test]
    fn serials_are_random_and_positive() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 16);
    }
}
