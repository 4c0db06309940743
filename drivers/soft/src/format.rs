//! The on-disk form of one soft token, version 1, and its strict reader.
//!
//! A token file is one header line followed by a JSON body:
//!
//! ```text
//! UKEY-SOFT-TOKEN 1 sha256:<hex of SHA-256 over the body>
//! { "label": ..., "serial": ..., "user_pin": {...}, "so_pin": {...}, "keys": [...], ... }
//! ```
//!
//! The header names the format and its version, so a newer ukey can migrate and an older one can
//! refuse with a clear message; the checksum catches truncation and bit rot anywhere in the body,
//! including inside base64 fields that would otherwise still parse. Secrets in the body are only
//! ever ciphertexts ([`Sealed`]); public keys, certificates and public data objects are in clear.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use ukey_api::crypto::keyinfo::spki_algorithm;
use ukey_api::{Error, KeyAlgorithm, ObjectId, Result};

use crate::kdf::{KdfParams, SALT_LEN};
use crate::seal::Sealed;
use crate::serde_b64;

/// First word of every token file.
pub const FORMAT_MAGIC: &str = "UKEY-SOFT-TOKEN";

/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Most tries a PIN record may allow.
pub const MAX_TRIES_LIMIT: u32 = 100;

/// Largest token file ukey will read (keys, certificates and data objects of one token).
pub const MAX_FILE_LEN: u64 = 64 * 1024 * 1024;

/// Everything stored for one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenState {
    /// Label people see.
    pub label: String,
    /// Random serial, also the file name.
    pub serial: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// The holder's PIN.
    pub user_pin: PinRecord,
    /// The security officer's PIN.
    pub so_pin: PinRecord,
    /// Private keys (encrypted) with their public halves.
    #[serde(default)]
    pub keys: Vec<KeyRecord>,
    /// Certificates, paired with keys by id.
    #[serde(default)]
    pub certificates: Vec<CertRecord>,
    /// Data objects.
    #[serde(default)]
    pub data: Vec<DataRecord>,
}

/// One PIN: the token master key wrapped under a key derived from it, and its retry counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    /// Argon2id parameters used for this record.
    pub kdf: KdfParams,
    /// Argon2 salt.
    #[serde(with = "serde_b64")]
    pub salt: Vec<u8>,
    /// The master key sealed under the PIN-derived key.
    pub wrapped_master_key: Sealed,
    /// Tries left before the PIN locks; 0 means locked.
    pub tries_left: u32,
    /// Tries allowed after a success.
    pub max_tries: u32,
    /// The PIN must be changed before it is used for anything else.
    #[serde(default)]
    pub must_change: bool,
}

impl PinRecord {
    /// No tries left.
    pub fn locked(&self) -> bool {
        self.tries_left == 0
    }
}

/// A private key, encrypted under the master key, with its public key in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Id pairing it with its certificate.
    pub id: ObjectId,
    /// Label.
    pub label: String,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// DER SubjectPublicKeyInfo.
    #[serde(with = "serde_b64")]
    pub public_key: Vec<u8>,
    /// PKCS#8 DER of the private key, sealed under the master key.
    pub private_key: Sealed,
}

/// A certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    /// Id of the key it belongs to.
    pub id: ObjectId,
    /// Label.
    pub label: String,
    /// DER.
    #[serde(with = "serde_b64")]
    pub der: Vec<u8>,
}

/// A data object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    /// Optional id.
    pub id: ObjectId,
    /// Label, unique on the token.
    pub label: String,
    /// Owning application.
    pub application: String,
    /// Content.
    pub value: DataValue,
}

/// Content of a data object: readable by anyone, or sealed under the master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataValue {
    /// Readable without a PIN.
    Public {
        /// The bytes.
        #[serde(with = "serde_b64")]
        bytes: Vec<u8>,
    },
    /// Needs the user PIN.
    Private {
        /// The bytes, sealed.
        sealed: Sealed,
    },
}

impl DataRecord {
    /// Reading needs the user PIN.
    pub fn private(&self) -> bool {
        matches!(self.value, DataValue::Private { .. })
    }

    /// Plaintext size, known without decrypting.
    pub fn size(&self) -> usize {
        match &self.value {
            DataValue::Public { bytes } => bytes.len(),
            DataValue::Private { sealed } => sealed.ciphertext.len().saturating_sub(crate::seal::TAG_LEN),
        }
    }
}

/// Serialises a token into the bytes of its file.
pub fn encode(state: &TokenState) -> Result<Vec<u8>> {
    let body = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::Device(format!("could not serialise the soft token {}: {e}", state.serial)))?;
    let mut out =
        format!("{FORMAT_MAGIC} {FORMAT_VERSION} sha256:{}\n", hex::encode(Sha256::digest(&body))).into_bytes();
    out.extend_from_slice(&body);
    out.push(b'\n');
    Ok(out)
}

/// Reads a token file's bytes, refusing anything damaged with [`Error::Corrupt`] naming `path`.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<TokenState> {
    let corrupt = |reason: String| Error::Corrupt { path: path.to_path_buf(), reason };
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| corrupt("no header line: not a ukey soft-token file, or truncated".into()))?;
    let (header, rest) = bytes.split_at(newline);
    let body = rest.get(1..).unwrap_or_default();
    let header = std::str::from_utf8(header)
        .map_err(|_| corrupt("the header line is not text: not a ukey soft-token file".into()))?;
    let mut parts = header.split(' ');
    if parts.next() != Some(FORMAT_MAGIC) {
        return Err(corrupt(format!("the header does not start with {FORMAT_MAGIC}: not a ukey soft-token file")));
    }
    let version: u32 =
        parts.next().and_then(|v| v.parse().ok()).ok_or_else(|| corrupt("the header has no format version".into()))?;
    if version != FORMAT_VERSION {
        return Err(Error::NotSupported(format!(
            "{}: soft-token format version {version}; this ukey reads version {FORMAT_VERSION} — use the ukey that wrote it, or a newer one",
            path.display()
        )));
    }
    let checksum = parts
        .next()
        .and_then(|c| c.strip_prefix("sha256:"))
        .ok_or_else(|| corrupt("the header has no sha256 checksum".into()))?;
    // The body ends with the newline `encode` appends; the checksum covers what precedes it.
    let json = body.strip_suffix(b"\n").unwrap_or(body);
    if !hex::encode(Sha256::digest(json)).eq_ignore_ascii_case(checksum) {
        return Err(corrupt("checksum mismatch: the file is damaged or truncated".into()));
    }
    let state: TokenState = serde_json::from_slice(json).map_err(|e| corrupt(format!("unreadable content: {e}")))?;
    validate(&state).map_err(corrupt)?;
    Ok(state)
}

/// Semantic checks the JSON shape cannot express.
fn validate(state: &TokenState) -> std::result::Result<(), String> {
    if state.serial.is_empty() || !state.serial.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("the serial is empty or not alphanumeric".into());
    }
    for (name, pin) in [("user PIN", &state.user_pin), ("SO PIN", &state.so_pin)] {
        validate_pin_record(pin).map_err(|e| format!("{name} record: {e}"))?;
    }
    let mut ids = HashSet::new();
    for key in &state.keys {
        if !ids.insert(&key.id) {
            return Err(format!("two keys share the id {}", key.id));
        }
        key.private_key.check_shape().map_err(|e| format!("key {}: {e}", key.id))?;
        let alg = spki_algorithm(&key.public_key).map_err(|e| format!("key {}: public key: {e}", key.id))?;
        if alg != key.algorithm {
            return Err(format!("key {}: stored as {} but its public key is {alg}", key.id, key.algorithm));
        }
    }
    let mut labels = HashSet::new();
    for data in &state.data {
        if !labels.insert(&data.label) {
            return Err(format!("two data objects share the label `{}`", data.label));
        }
        if let DataValue::Private { sealed } = &data.value {
            sealed.check_shape().map_err(|e| format!("data object `{}`: {e}", data.label))?;
        }
    }
    Ok(())
}

fn validate_pin_record(pin: &PinRecord) -> std::result::Result<(), String> {
    pin.kdf.check()?;
    if pin.salt.len() != SALT_LEN {
        return Err(format!("the salt is {} bytes instead of {SALT_LEN}", pin.salt.len()));
    }
    pin.wrapped_master_key.check_shape()?;
    if pin.max_tries == 0 || pin.max_tries > MAX_TRIES_LIMIT {
        return Err(format!("max_tries {} is outside 1..={MAX_TRIES_LIMIT}", pin.max_tries));
    }
    if pin.tries_left > pin.max_tries {
        return Err(format!("tries_left {} exceeds max_tries {}", pin.tries_left, pin.max_tries));
    }
    Ok(())
}

/// The id that pairs a key with its certificate: the first 20 bytes of SHA-256 over the public
/// key bits (the BIT STRING of the SubjectPublicKeyInfo), so it does not depend on how the
/// algorithm identifier around it was encoded (SM2 certificates differ there).
pub fn key_id_for_spki(spki_der: &[u8]) -> Result<ObjectId> {
    let bits = public_key_bits(spki_der)?;
    Ok(ObjectId(Sha256::digest(&bits).get(..20).unwrap_or_default().to_vec()))
}

/// The raw public key bits of a DER SubjectPublicKeyInfo.
pub fn public_key_bits(spki_der: &[u8]) -> Result<Vec<u8>> {
    use der::Decode;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| Error::InvalidInput(format!("not a SubjectPublicKeyInfo: {e}")))?;
    Ok(spki.subject_public_key.raw_bytes().to_vec())
}
