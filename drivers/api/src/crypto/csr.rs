//! PKCS#10 certificate requests signed by a key that stays on its carrier.
//!
//! The request info is encoded here, hashed by [`crate::crypto::prepare_input`] (SM2: over
//! `Z ‖ info` with the mechanism's id) and signed through a [`KeySigner`]. An SM2 request names
//! the key id-ecPublicKey with the SM2 curve and the signature SM2-with-SM3 (1.2.156.10197.1.501),
//! signed with the GM/T 0009 default id, as CAs and OpenSSL (`-vfyopt distid:...`) expect.

use der::asn1::SetOfVec;
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

use crate::crypto::keyinfo;
use crate::crypto::name::parse_name;
use crate::crypto::pem;
use crate::crypto::signer::{KeySigner, sign_for_x509};
use crate::crypto::x509sig;
use crate::error::{Error, Result};
use crate::mechanism::Mechanism;

/// What a verified request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrInfo {
    /// The requested subject.
    pub subject: Name,
    /// The subject's public key, DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    /// The request as DER.
    pub der: Vec<u8>,
}

/// Builds a request for `subject` with the signer's key, signed with `mechanism` (default: the
/// key's default mechanism, SM2 with the GM/T 0009 id). Returns DER.
pub fn build_csr(signer: &dyn KeySigner, subject: &Name, mechanism: Option<&Mechanism>) -> Result<Vec<u8>> {
    let algorithm = signer.algorithm();
    let mechanism = mechanism.cloned().unwrap_or_else(|| algorithm.default_mechanism());
    mechanism.check_key(algorithm)?;
    let public_key = SubjectPublicKeyInfoOwned::from_der(signer.public_key_spki())
        .map_err(|e| Error::InvalidInput(format!("the signer's public key is not a SubjectPublicKeyInfo: {e}")))?;
    let info = CertReqInfo { version: Version::V1, subject: subject.clone(), public_key, attributes: SetOfVec::new() };
    let info_der = info.to_der().map_err(|e| Error::Crypto(format!("request encoding failed: {e}")))?;
    let (algorithm_id, signature) = sign_for_x509(signer, &mechanism, &info_der)?;
    let req = CertReq { info, algorithm: algorithm_id, signature };
    req.to_der().map_err(|e| Error::Crypto(format!("request encoding failed: {e}")))
}

/// [`build_csr`] from a subject string (`CN=...,O=...`), as PEM.
pub fn build_csr_pem(signer: &dyn KeySigner, subject: &str, mechanism: Option<&Mechanism>) -> Result<String> {
    let name = parse_name(subject)?;
    pem::csr_pem(&build_csr(signer, &name, mechanism)?)
}

/// Parses a request (PEM or DER) and checks its self-signature (SM2: with `sm2_id`, default
/// GM/T 0009's), so a CA never certifies a key its requester does not hold.
pub fn verify_csr(bytes: &[u8], sm2_id: Option<&[u8]>) -> Result<CsrInfo> {
    let der = pem::der_from_pem_or_der(bytes, pem::CERTIFICATE_REQUEST)?;
    let req =
        CertReq::from_der(&der).map_err(|e| Error::InvalidInput(format!("not a PKCS#10 certificate request: {e}")))?;
    let info_der =
        req.info.to_der().map_err(|e| Error::InvalidInput(format!("request info does not re-encode: {e}")))?;
    let public_key =
        req.info.public_key.to_der().map_err(|e| Error::InvalidInput(format!("request public key: {e}")))?;
    keyinfo::spki_algorithm(&public_key)?;
    let signature =
        req.signature.as_bytes().ok_or_else(|| Error::InvalidInput("request signature has unused bits".into()))?;
    x509sig::verify_signed_data(&public_key, &req.algorithm, &info_der, signature, sm2_id)
        .map_err(|e| Error::Crypto(format!("the request's self-signature is invalid: {e}")))?;
    Ok(CsrInfo { subject: req.info.subject, public_key, der })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::software::SoftwareKey;
    use crate::mechanism::KeyAlgorithm;

    #[test]
    fn ec_requests_verify_and_tampering_is_caught() {
        for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256, KeyAlgorithm::P384] {
            let key = SoftwareKey::generate(alg).unwrap();
            let pem = build_csr_pem(&key, "CN=Alice,O=Example,C=CN", None).unwrap();
            let info = verify_csr(pem.as_bytes(), None).unwrap();
            assert_eq!(info.public_key, key.public_key_spki());
            assert_eq!(info.subject.to_string(), "CN=Alice,O=Example,C=CN");
            let mut der = info.der.clone();
            let pos = der.windows(5).position(|w| w == b"Alice").unwrap();
            der[pos] = b'B';
            assert!(verify_csr(&der, None).is_err(), "{alg}");
        }
    }

    #[test]
    fn sm2_request_binds_the_id() {
        let key = SoftwareKey::generate(KeyAlgorithm::Sm2).unwrap();
        let mech = Mechanism::Sm2Sm3 { user_id: b"alice@example.cn".to_vec() };
        let der = build_csr(&key, &parse_name("CN=Alice").unwrap(), Some(&mech)).unwrap();
        assert!(verify_csr(&der, None).is_err());
        verify_csr(&der, Some(b"alice@example.cn")).unwrap();
    }

    #[test]
    fn wrong_mechanism_is_refused() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let err = build_csr(&key, &parse_name("CN=x").unwrap(), Some(&Mechanism::RsaPssSha256)).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "{err}");
    }
}
