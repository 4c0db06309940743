//! Objects on a carrier: certificates, private keys paired with them, and data objects.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::mechanism::{KeyAlgorithm, MechanismKind};

/// The identifier that pairs a private key with its certificate on one carrier (PKCS#11
/// `CKA_ID`; for PIV the slot number; for the soft token a hash of the public key).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectId(#[serde(with = "hex_bytes")] pub Vec<u8>);

impl ObjectId {
    /// Lower-case hex, the form people type.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parses hex (with or without `0x`, `:` separators allowed).
    pub fn from_hex(s: &str) -> Result<Self> {
        let clean: String = s.trim().trim_start_matches("0x").chars().filter(|c| *c != ':').collect();
        hex::decode(&clean)
            .map(ObjectId)
            .map_err(|_| crate::Error::InvalidInput(format!("`{s}` is not a hex object id (like 01 or 9a)")))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A parsed X.509 certificate: the DER and the fields people and policy look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    /// The certificate as stored.
    #[serde(with = "base64_bytes")]
    pub der: Vec<u8>,
    /// Subject in RFC 4514 form.
    pub subject: String,
    /// Issuer in RFC 4514 form.
    pub issuer: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// Key usage bits by name (`digitalSignature`, `nonRepudiation`, ...); empty when absent.
    pub key_usage: Vec<String>,
    /// The subject key's algorithm, when ukey supports it.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// The subject public key, DER SubjectPublicKeyInfo.
    #[serde(with = "base64_bytes")]
    pub public_key: Vec<u8>,
    /// SHA-256 over the DER, lower-case hex: the certificate's identity in records and logs.
    pub sha256_fingerprint: String,
}

impl CertificateInfo {
    /// Parses DER (or PEM) into the fields above; refuses anything that is not one certificate.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        crate::crypto::cert::parse_certificate(bytes)
    }

    /// Common name of the subject, or the whole subject if it has none.
    pub fn subject_cn(&self) -> &str {
        self.subject.split(',').find_map(|rdn| rdn.trim().strip_prefix("CN=")).unwrap_or(&self.subject)
    }
}

/// A certificate stored on a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateObject {
    /// Pairs it with its private key.
    pub id: ObjectId,
    /// The label on the carrier.
    pub label: String,
    /// Parsed content.
    pub info: CertificateInfo,
}

/// A private key on a carrier (the secret never leaves; this is what is known about it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyObject {
    /// Pairs it with its certificate.
    pub id: ObjectId,
    /// The label on the carrier.
    pub label: String,
    /// The key algorithm.
    pub algorithm: KeyAlgorithm,
    /// Public key as DER SubjectPublicKeyInfo, when the carrier exposes it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "base64_opt")]
    pub public_key: Option<Vec<u8>>,
    /// Every signature needs a fresh PIN entry (PKCS#11 `CKA_ALWAYS_AUTHENTICATE`, PIV slot 9C).
    pub always_authenticate: bool,
    /// Signature mechanisms this key can make on this carrier.
    pub mechanisms: Vec<MechanismKind>,
    /// SHA-256 fingerprint of the paired certificate, if one is stored.
    pub certificate: Option<String>,
}

/// A data object on a carrier (custody tags, application data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataObjectInfo {
    /// Carrier-specific id (PKCS#11 `CKA_OBJECT_ID` or PIV tag), may be empty.
    pub id: ObjectId,
    /// The label.
    pub label: String,
    /// The owning application name (PKCS#11 `CKA_APPLICATION`).
    pub application: String,
    /// Reading it needs the user PIN.
    pub private: bool,
    /// Size in bytes, when known without reading it.
    pub size: Option<usize>,
}

/// An object that could not be read or parsed; reported beside the others, never hiding them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectProblem {
    /// Which object (label, id or slot).
    pub object: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Everything listed on a carrier in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectList {
    /// Certificates.
    pub certificates: Vec<CertificateObject>,
    /// Private keys.
    pub keys: Vec<KeyObject>,
    /// Data objects.
    pub data: Vec<DataObjectInfo>,
    /// Objects that could not be read.
    pub problems: Vec<ObjectProblem>,
}

impl ObjectList {
    /// The certificate paired with a key id, if any.
    pub fn certificate_for(&self, id: &ObjectId) -> Option<&CertificateObject> {
        self.certificates.iter().find(|c| &c.id == id)
    }

    /// The key paired with a certificate id, if any.
    pub fn key_for(&self, id: &ObjectId) -> Option<&KeyObject> {
        self.keys.iter().find(|k| &k.id == id)
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod base64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::crypto::encoding::base64_encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        crate::crypto::encoding::base64_decode(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod base64_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => super::base64_bytes::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| crate::crypto::encoding::base64_decode(&s).map_err(serde::de::Error::custom)).transpose()
    }
}
