//! The custody tag: a record of custody carried ON the carrier, signed by the unit, so a lent key
//! is recognised on any machine that has the unit's trust anchor — even one with no registry
//! record for it.
//!
//! Stored as a public data object labelled [`TAG_LABEL`] (application [`TAG_APPLICATION`]):
//!
//! ```json
//! {"format":"ukey-custody-tag/1",
//!  "payload":"<base64 of the payload JSON>",
//!  "mechanism":"sm2-sm3",
//!  "signature":"<base64 DER signature over the payload bytes>",
//!  "signer":"<SHA-256 of the signer's certificate>"}
//! ```
//!
//! The payload names the holder, the accounts and rights, the carrier serial and model, the
//! certificate fingerprints, the issuing operator and the date. The signature is over the exact
//! payload bytes (no re-serialisation); SM2 signatures use the GM/T 0009 default id. A tag is
//! valid only when a certificate in the system's `anchors/` directory verifies it AND its serial
//! is the carrier's own (a tag copied to another carrier is refused).

use std::path::Path;

use serde::{Deserialize, Serialize};

use ukey_api::crypto::encoding::{base64_decode, base64_encode};
use ukey_api::crypto::{KeySigner, SignData, prepare_input, verify_signature};
use ukey_api::{CertificateInfo, Mechanism};

use crate::policy::record::{Holder, Right};

/// Data-object label of the tag.
pub const TAG_LABEL: &str = "ukey-custody-tag";
/// Data-object application of the tag.
pub const TAG_APPLICATION: &str = "ukey";
/// Format name inside the tag.
pub const TAG_FORMAT: &str = "ukey-custody-tag/1";
/// Largest tag accepted.
pub const MAX_TAG_BYTES: usize = 16 * 1024;

/// What a tag says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TagPayload {
    /// The unit that issued it.
    pub unit: String,
    /// The holder.
    pub holder: Holder,
    /// Accounts allowed (logins; the same across the unit's machines).
    pub accounts: Vec<String>,
    /// Use rights.
    pub rights: Vec<Right>,
    /// The carrier's serial.
    pub serial: String,
    /// The carrier's model.
    pub model: String,
    /// SHA-256 fingerprints of its certificates.
    pub certificates: Vec<String>,
    /// Who wrote the tag.
    pub operator: String,
    /// When.
    pub issued: String,
}

/// The tag as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTag {
    /// [`TAG_FORMAT`].
    pub format: String,
    /// Base64 of the payload JSON.
    pub payload: String,
    /// Mechanism name.
    pub mechanism: String,
    /// Base64 of the DER (EC/SM2) or PKCS#1 (RSA) signature.
    pub signature: String,
    /// SHA-256 fingerprint of the signer's certificate.
    pub signer: String,
}

/// A tag's check against the anchors and the carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum TagCheck {
    /// No tag on the carrier (or the carrier cannot hold data objects).
    Absent,
    /// Signed by an anchor and for this carrier.
    Valid {
        /// What it says.
        payload: Box<TagPayload>,
        /// Subject of the anchor that verified it.
        anchor: String,
    },
    /// Present but not acceptable.
    Invalid {
        /// Why, for a person.
        reason: String,
    },
}

/// Signs a payload with the unit's key and `cert` (the key's certificate, which must be among the
/// anchors of the machines that will check it). Returns the bytes to store on the carrier.
pub fn sign_tag(payload: &TagPayload, signer: &dyn KeySigner, cert_der: &[u8]) -> ukey_api::Result<Vec<u8>> {
    let cert = CertificateInfo::parse(cert_der)?;
    if cert.public_key != signer.public_key_spki() {
        return Err(ukey_api::Error::InvalidInput(
            "the unit's certificate does not belong to the signing key; give the key's own certificate".into(),
        ));
    }
    let bytes = serde_json::to_vec(payload).map_err(|e| ukey_api::Error::InvalidInput(e.to_string()))?;
    let mechanism = signer.algorithm().default_mechanism();
    let input = prepare_input(&mechanism, Some(signer.public_key_spki()), SignData::Message(&bytes))?;
    let raw = signer.sign(&mechanism, &input)?;
    let signature =
        ukey_api::crypto::encode_signature(signer.algorithm(), &raw, ukey_api::crypto::SignatureFormat::Der)?;
    let tag = SignedTag {
        format: TAG_FORMAT.into(),
        payload: base64_encode(&bytes),
        mechanism: mechanism.name().to_string(),
        signature: base64_encode(&signature),
        signer: cert.sha256_fingerprint,
    };
    serde_json::to_vec(&tag).map_err(|e| ukey_api::Error::InvalidInput(e.to_string()))
}

/// The unit's trust anchors: every certificate in the `anchors/` directory (PEM or DER files).
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    certs: Vec<CertificateInfo>,
}

impl Anchors {
    /// Loads `dir`; unreadable files are logged and skipped. A missing directory is no anchors.
    pub fn load(dir: &Path) -> Self {
        let mut certs = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else { return Anchors { certs } };
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
        paths.sort();
        for path in paths {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| ukey_api::crypto::pem::certificates_from_pem_or_der(&b).map_err(|e| e.to_string()))
                .and_then(|ders| {
                    ders.iter()
                        .map(|d| CertificateInfo::parse(d).map_err(|e| e.to_string()))
                        .collect::<Result<Vec<_>, _>>()
                });
            match parsed {
                Ok(mut c) => certs.append(&mut c),
                Err(e) => log::warn!("trust anchor {} is not usable: {e}", path.display()),
            }
        }
        Anchors { certs }
    }

    /// Anchors from certificates already parsed.
    pub fn from_certificates(certs: Vec<CertificateInfo>) -> Self {
        Anchors { certs }
    }

    /// Whether there are any.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// Checks a tag read from the carrier with serial `serial`.
    pub fn check(&self, bytes: &[u8], serial: &str) -> TagCheck {
        let invalid = |reason: String| TagCheck::Invalid { reason };
        if bytes.len() > MAX_TAG_BYTES {
            return invalid(format!("the custody tag is {} bytes, larger than any real tag", bytes.len()));
        }
        let tag: SignedTag = match serde_json::from_slice(bytes) {
            Ok(t) => t,
            Err(e) => return invalid(format!("the custody tag is not readable ({e})")),
        };
        if tag.format != TAG_FORMAT {
            return invalid(format!("the custody tag has an unknown format `{}`", tag.format));
        }
        let (Ok(payload_bytes), Ok(signature)) = (base64_decode(&tag.payload), base64_decode(&tag.signature)) else {
            return invalid("the custody tag is damaged (bad base64)".into());
        };
        let Some(anchor) = self.certs.iter().find(|c| c.sha256_fingerprint.eq_ignore_ascii_case(&tag.signer)) else {
            return invalid(format!(
                "the custody tag is signed by a key this machine does not trust (certificate {}): it was written by another unit, or forged",
                short(&tag.signer)
            ));
        };
        let mechanism = match Mechanism::parse(&tag.mechanism, None) {
            Ok(m) => m,
            Err(e) => return invalid(format!("the custody tag names an unusable mechanism ({e})")),
        };
        if let Err(e) = verify_signature(&anchor.public_key, &mechanism, SignData::Message(&payload_bytes), &signature)
        {
            return invalid(format!(
                "the custody tag's signature does not verify against the unit's anchor: it was altered ({e})"
            ));
        }
        let payload: TagPayload = match serde_json::from_slice(&payload_bytes) {
            Ok(p) => p,
            Err(e) => return invalid(format!("the custody tag's content is not readable ({e})")),
        };
        if payload.serial != serial {
            return invalid(format!(
                "the custody tag was issued for carrier serial {}, not this carrier ({serial}): it was copied",
                payload.serial
            ));
        }
        TagCheck::Valid { payload: Box::new(payload), anchor: anchor.subject.clone() }
    }
}

fn short(fp: &str) -> String {
    fp.get(..16).map(|s| format!("{s}…")).unwrap_or_else(|| fp.to_string())
}
