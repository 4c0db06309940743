//! Signature mechanisms, key algorithms and hashes, and what a carrier is handed to sign.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The GM/T 0009 default distinguishing identifier for SM2 signatures (`1234567812345678`).
///
/// OpenSSL 3.0 uses an EMPTY id unless `-sigopt distid:` is given; ukey always uses this one
/// unless the caller names another.
pub const DEFAULT_SM2_ID: &[u8] = b"1234567812345678";

/// Longest SM2 distinguishing id: its bit length must fit the 16-bit ENTL field of Z.
pub const MAX_SM2_ID_LEN: usize = 8191;

/// Hash functions used by the mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    /// SM3 (GB/T 32905), 32 bytes.
    Sm3,
    /// SHA-256, 32 bytes.
    Sha256,
    /// SHA-384, 48 bytes.
    Sha384,
    /// SHA-1, 20 bytes: only inside the DigestInfo a program brings to [`Mechanism::RsaPkcs1`]
    /// (PKCS#11 `CKM_RSA_PKCS`; `pkcs11-tool --test` signs SHA-1 DigestInfos). ukey never picks it.
    Sha1,
    /// SHA-224, 28 bytes (a DigestInfo a program brings to [`Mechanism::RsaPkcs1`]).
    Sha224,
    /// SHA-512, 64 bytes.
    Sha512,
}

impl HashAlg {
    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sm3 | HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha512 => 64,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sm3 => "sm3",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha224 => "sha224",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// Whether an RSA PKCS#1 v1.5 DigestInfo may name this hash (the SHA family; SM3 has no
    /// RSA use).
    pub fn in_rsa_digest_info(self) -> bool {
        !matches!(self, HashAlg::Sm3)
    }
}

/// Key algorithms a carrier can hold or generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// SM2 on the GM/T 0003 curve.
    Sm2,
    /// ECDSA on NIST P-256.
    P256,
    /// ECDSA on NIST P-384.
    P384,
    /// RSA with the given modulus size in bits.
    Rsa {
        /// Modulus size.
        bits: u32,
    },
}

impl KeyAlgorithm {
    /// The names the CLI and JSON accept, for error messages.
    pub const SUPPORTED_NAMES: &'static str = "sm2, p256, p384, rsa2048, rsa3072, rsa4096";

    /// Canonical name (`sm2`, `p256`, `p384`, `rsa2048`, ...).
    pub fn name(self) -> String {
        match self {
            KeyAlgorithm::Sm2 => "sm2".into(),
            KeyAlgorithm::P256 => "p256".into(),
            KeyAlgorithm::P384 => "p384".into(),
            KeyAlgorithm::Rsa { bits } => format!("rsa{bits}"),
        }
    }

    /// The mechanism ukey uses with this key when the caller names none.
    pub fn default_mechanism(self) -> Mechanism {
        match self {
            KeyAlgorithm::Sm2 => Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() },
            KeyAlgorithm::P256 => Mechanism::EcdsaSha256,
            KeyAlgorithm::P384 => Mechanism::EcdsaSha384,
            KeyAlgorithm::Rsa { .. } => Mechanism::RsaPkcs1Sha256,
        }
    }

    /// Size in bytes of one signature component (r or s) for EC keys; `None` for RSA.
    pub fn ec_field_len(self) -> Option<usize> {
        match self {
            KeyAlgorithm::Sm2 | KeyAlgorithm::P256 => Some(32),
            KeyAlgorithm::P384 => Some(48),
            KeyAlgorithm::Rsa { .. } => None,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "sm2" => Ok(KeyAlgorithm::Sm2),
            "p256" | "ecp256" | "prime256v1" | "secp256r1" => Ok(KeyAlgorithm::P256),
            "p384" | "ecp384" | "secp384r1" => Ok(KeyAlgorithm::P384),
            "rsa2048" => Ok(KeyAlgorithm::Rsa { bits: 2048 }),
            "rsa3072" => Ok(KeyAlgorithm::Rsa { bits: 3072 }),
            "rsa4096" => Ok(KeyAlgorithm::Rsa { bits: 4096 }),
            _ => Err(Error::NotSupported(format!("key algorithm `{s}`; supported: {}", KeyAlgorithm::SUPPORTED_NAMES))),
        }
    }
}

/// A signature mechanism with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum Mechanism {
    /// SM2 signature over SM3(Z ‖ M), GM/T 0009, with the signer's distinguishing id.
    Sm2Sm3 {
        /// Distinguishing id that enters Z; [`DEFAULT_SM2_ID`] unless agreed otherwise.
        #[serde(with = "user_id_text")]
        user_id: Vec<u8>,
    },
    /// ECDSA over SHA-256 (P-256 or P-384 key).
    EcdsaSha256,
    /// ECDSA over SHA-384 (P-256 or P-384 key).
    EcdsaSha384,
    /// RSA PKCS#1 v1.5 with a SHA-256 DigestInfo.
    RsaPkcs1Sha256,
    /// RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    RsaPssSha256,
    /// RSA PKCS#1 v1.5 over the DigestInfo of `hash` (SHA-1, -224, -256, -384 or -512): for
    /// programs that bring their own DigestInfo (PKCS#11 `CKM_RSA_PKCS`; `pkcs11-tool --test`
    /// and TLS 1.2 clients sign SHA-1 and SHA-512 ones). The digest handed to the carrier is the
    /// `hash` value; the carrier (or the host for raw-RSA carriers) wraps it in the DigestInfo.
    RsaPkcs1 {
        /// The hash the DigestInfo names.
        hash: HashAlg,
    },
}

/// A mechanism without its parameters, for capability lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MechanismKind {
    /// See [`Mechanism::Sm2Sm3`].
    Sm2Sm3,
    /// See [`Mechanism::EcdsaSha256`].
    EcdsaSha256,
    /// See [`Mechanism::EcdsaSha384`].
    EcdsaSha384,
    /// See [`Mechanism::RsaPkcs1Sha256`].
    RsaPkcs1Sha256,
    /// See [`Mechanism::RsaPssSha256`].
    RsaPssSha256,
    /// See [`Mechanism::RsaPkcs1`].
    RsaPkcs1,
}

impl Mechanism {
    /// The names the CLI and JSON accept, for error messages.
    pub const SUPPORTED_NAMES: &'static str =
        "sm2-sm3, ecdsa-sha256, ecdsa-sha384, rsa-pkcs1-sha256, rsa-pss-sha256, rsa-pkcs1";

    /// The hash computed over the message (for SM2: over Z ‖ M).
    pub fn hash(&self) -> HashAlg {
        match self {
            Mechanism::Sm2Sm3 { .. } => HashAlg::Sm3,
            Mechanism::EcdsaSha256 | Mechanism::RsaPkcs1Sha256 | Mechanism::RsaPssSha256 => HashAlg::Sha256,
            Mechanism::EcdsaSha384 => HashAlg::Sha384,
            Mechanism::RsaPkcs1 { hash } => *hash,
        }
    }

    /// The parameter-free kind.
    pub fn kind(&self) -> MechanismKind {
        match self {
            Mechanism::Sm2Sm3 { .. } => MechanismKind::Sm2Sm3,
            Mechanism::EcdsaSha256 => MechanismKind::EcdsaSha256,
            Mechanism::EcdsaSha384 => MechanismKind::EcdsaSha384,
            Mechanism::RsaPkcs1Sha256 => MechanismKind::RsaPkcs1Sha256,
            Mechanism::RsaPssSha256 => MechanismKind::RsaPssSha256,
            Mechanism::RsaPkcs1 { .. } => MechanismKind::RsaPkcs1,
        }
    }

    /// Canonical name.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Whether a key of this algorithm can make this signature.
    pub fn works_with(&self, key: KeyAlgorithm) -> bool {
        matches!(
            (self, key),
            (Mechanism::Sm2Sm3 { .. }, KeyAlgorithm::Sm2)
                | (Mechanism::EcdsaSha256 | Mechanism::EcdsaSha384, KeyAlgorithm::P256 | KeyAlgorithm::P384)
                | (Mechanism::RsaPkcs1Sha256 | Mechanism::RsaPssSha256, KeyAlgorithm::Rsa { .. })
        ) || matches!((self, key), (Mechanism::RsaPkcs1 { hash }, KeyAlgorithm::Rsa { .. }) if hash.in_rsa_digest_info())
    }

    /// Refuses a mechanism the key cannot make, naming the ones it can.
    pub fn check_key(&self, key: KeyAlgorithm) -> Result<()> {
        if self.works_with(key) {
            return Ok(());
        }
        let usable: Vec<&str> =
            MechanismKind::ALL.iter().filter(|k| k.with_default_params().works_with(key)).map(|k| k.as_str()).collect();
        Err(Error::NotSupported(format!(
            "a {key} key cannot make {} signatures; it supports: {}",
            self.name(),
            usable.join(", ")
        )))
    }

    /// Parses a mechanism name; SM2 gets `user_id`, or the GM/T 0009 default when `None`.
    pub fn parse(name: &str, user_id: Option<&[u8]>) -> Result<Self> {
        let kind: MechanismKind = name.parse()?;
        Ok(match kind {
            MechanismKind::Sm2Sm3 => {
                let id = user_id.unwrap_or(DEFAULT_SM2_ID).to_vec();
                if id.len() > MAX_SM2_ID_LEN {
                    return Err(Error::InvalidInput(format!(
                        "the SM2 distinguishing id is {} bytes; at most {MAX_SM2_ID_LEN} are allowed",
                        id.len()
                    )));
                }
                Mechanism::Sm2Sm3 { user_id: id }
            }
            other => other.with_default_params(),
        })
    }
}

impl MechanismKind {
    /// Every mechanism kind, in a stable order.
    pub const ALL: [MechanismKind; 6] = [
        MechanismKind::Sm2Sm3,
        MechanismKind::EcdsaSha256,
        MechanismKind::EcdsaSha384,
        MechanismKind::RsaPkcs1Sha256,
        MechanismKind::RsaPssSha256,
        MechanismKind::RsaPkcs1,
    ];

    /// Canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            MechanismKind::Sm2Sm3 => "sm2-sm3",
            MechanismKind::EcdsaSha256 => "ecdsa-sha256",
            MechanismKind::EcdsaSha384 => "ecdsa-sha384",
            MechanismKind::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            MechanismKind::RsaPssSha256 => "rsa-pss-sha256",
            MechanismKind::RsaPkcs1 => "rsa-pkcs1",
        }
    }

    /// The mechanism with default parameters (SM2: the GM/T 0009 default id; RSA PKCS#1 over a
    /// DigestInfo: SHA-256).
    pub fn with_default_params(self) -> Mechanism {
        match self {
            MechanismKind::Sm2Sm3 => Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() },
            MechanismKind::EcdsaSha256 => Mechanism::EcdsaSha256,
            MechanismKind::EcdsaSha384 => Mechanism::EcdsaSha384,
            MechanismKind::RsaPkcs1Sha256 => Mechanism::RsaPkcs1Sha256,
            MechanismKind::RsaPssSha256 => Mechanism::RsaPssSha256,
            MechanismKind::RsaPkcs1 => Mechanism::RsaPkcs1 { hash: HashAlg::Sha256 },
        }
    }
}

impl FromStr for MechanismKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        MechanismKind::ALL
            .into_iter()
            .find(|k| k.as_str() == norm || (norm == "sm2" && *k == MechanismKind::Sm2Sm3))
            .ok_or_else(|| Error::NotSupported(format!("mechanism `{s}`; supported: {}", Mechanism::SUPPORTED_NAMES)))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a carrier wants to receive for a mechanism.
///
/// Most carriers sign a digest (PIV, PKCS#11 `CKM_ECDSA`, the soft token); some vendor PKCS#11
/// SM2 mechanisms want the message and compute Z and SM3 themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputForm {
    /// The mechanism's hash of the message (for SM2: SM3(Z ‖ M)).
    Digest,
    /// The message itself.
    Message,
}

/// What the core hands a carrier to sign.
///
/// The core always computes the digest (it is also what the PIN dialog shows a short form of);
/// the message is present unless the caller supplied only a digest (`--prehashed`).
#[derive(Clone, PartialEq, Eq)]
pub struct SignInput {
    /// The mechanism's digest of the message.
    pub digest: Vec<u8>,
    /// The message, when known.
    pub message: Option<Vec<u8>>,
}

impl fmt::Debug for SignInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInput")
            .field("digest", &hex::encode(&self.digest))
            .field("message_len", &self.message.as_ref().map(Vec::len))
            .finish()
    }
}

mod user_id_text {
    //! SM2 ids are printable in practice; store them as text when they are UTF-8, else as hex
    //! prefixed with `hex:`.
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(v) {
            Ok(text) if !text.starts_with("hex:") => s.serialize_str(text),
            _ => s.serialize_str(&format!("hex:{}", hex::encode(v))),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        match text.strip_prefix("hex:") {
            Some(h) => hex::decode(h).map_err(serde::de::Error::custom),
            None => Ok(text.into_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_supported_ones() {
        let err = "ed25519".parse::<KeyAlgorithm>().unwrap_err().to_string();
        assert!(err.contains("sm2, p256"), "{err}");
        let err = Mechanism::parse("md5-rsa", None).unwrap_err().to_string();
        assert!(err.contains("sm2-sm3"), "{err}");
    }

    #[test]
    fn rsa_key_cannot_do_sm2() {
        let sm2 = Mechanism::parse("sm2-sm3", None).unwrap();
        let err = sm2.check_key(KeyAlgorithm::Rsa { bits: 2048 }).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)));
        assert!(err.to_string().contains("rsa-pkcs1-sha256"));
    }

    #[test]
    fn sm2_default_id_is_gmt_0009() {
        assert_eq!(Mechanism::parse("sm2", None).unwrap(), Mechanism::Sm2Sm3 { user_id: b"1234567812345678".to_vec() });
    }

    #[test]
    fn rsa_pkcs1_carries_its_hash() {
        let m = Mechanism::RsaPkcs1 { hash: HashAlg::Sha1 };
        assert_eq!(m.hash().output_len(), 20);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"name":"rsa-pkcs1","hash":"sha1"}"#);
        assert_eq!(serde_json::from_str::<Mechanism>(&json).unwrap(), m);
        assert!(m.works_with(KeyAlgorithm::Rsa { bits: 2048 }));
        assert!(!m.works_with(KeyAlgorithm::P256));
        assert!(!Mechanism::RsaPkcs1 { hash: HashAlg::Sm3 }.works_with(KeyAlgorithm::Rsa { bits: 2048 }));
    }

    #[test]
    fn mechanism_json_round_trip() {
        let m = Mechanism::Sm2Sm3 { user_id: b"alice@example".to_vec() };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"name":"sm2-sm3","user_id":"alice@example"}"#);
        assert_eq!(serde_json::from_str::<Mechanism>(&json).unwrap(), m);
    }
}
