//! SM2 through vendor-defined PKCS#11 numbers.
//!
//! PKCS#11 (up to 3.2) defines no SM2 mechanism, so every Chinese module picks its own mechanism
//! and key-type values, and its own idea of what the application hands over: the message `M`
//! (the token computes Z and SM3 itself), the digest `e = SM3(Z ‖ M)`, or `Z ‖ M` for tokens that
//! hash without adding Z. A module's entry in the configuration (or, later, the carrier catalog)
//! says which; this file turns that into the mechanism number, the [`InputForm`] ukey's core
//! prepares, and the bytes handed to `C_Sign`. The known vendor values and their sources are in
//! `drivers/pkcs11/VENDOR-SM2.md`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ukey_api::{DEFAULT_SM2_ID, Error, InputForm, Result, SignInput};

/// What a vendor SM2 signing mechanism wants as `C_Sign` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sm2Input {
    /// `e = SM3(Z ‖ M)`, computed by ukey (the token only does the elliptic-curve part).
    Digest,
    /// The message `M`; the token computes Z (with the default id, or the id passed as the
    /// mechanism parameter when `id_parameter` is set) and SM3 itself.
    Message,
    /// `Z ‖ M`: the token hashes what it is given but does not add Z, so ukey prepends it.
    ZAndMessage,
}

/// A module's SM2 numbers as written in the configuration: a named profile, explicit numbers, or a
/// profile with some numbers overridden.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sm2VendorConfig {
    /// One of [`PROFILES`] by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The signing mechanism (`CKM_*`), e.g. `0x80008100`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "vendor_number")]
    pub sign_mechanism: Option<u64>,
    /// The SM2 key type (`CKK_*`); absent means keys are `CKK_EC` with the SM2 curve parameters.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "vendor_number")]
    pub key_type: Option<u64>,
    /// The key-pair generation mechanism, when the module can generate SM2 keys.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "vendor_number")]
    pub keygen_mechanism: Option<u64>,
    /// What `C_Sign` wants (see [`Sm2Input`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Sm2Input>,
    /// The signer's distinguishing id goes in the mechanism parameter (message input only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_parameter: Option<bool>,
}

/// The resolved SM2 numbers of one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sm2Profile {
    /// Profile name, or `custom`.
    pub name: String,
    /// The signing mechanism.
    pub sign_mechanism: u64,
    /// The SM2 key type, or `None` for `CKK_EC` keys on the SM2 curve.
    pub key_type: Option<u64>,
    /// The key-pair generation mechanism, if any.
    pub keygen_mechanism: Option<u64>,
    /// What `C_Sign` wants.
    pub input: Sm2Input,
    /// The distinguishing id goes in the mechanism parameter.
    pub id_parameter: bool,
}

/// One built-in vendor profile (see [`PROFILES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownProfile {
    /// Name used in the configuration.
    pub name: &'static str,
    /// Signing mechanism.
    pub sign_mechanism: u64,
    /// SM2 key type.
    pub key_type: Option<u64>,
    /// Key-pair generation mechanism.
    pub keygen_mechanism: Option<u64>,
    /// What `C_Sign` wants.
    pub input: Sm2Input,
    /// The id goes in the mechanism parameter.
    pub id_parameter: bool,
}

const fn known(
    name: &'static str,
    sign_mechanism: u64,
    key_type: u64,
    keygen_mechanism: u64,
    input: Sm2Input,
    id_parameter: bool,
) -> KnownProfile {
    KnownProfile {
        name,
        sign_mechanism,
        key_type: Some(key_type),
        keygen_mechanism: Some(keygen_mechanism),
        input,
        id_parameter,
    }
}

/// Vendor profiles found in public headers and wrappers; see `VENDOR-SM2.md` for each source and
/// how sure we are of the input form. Check your vendor's own `pkcs11` header before relying on
/// one: vendors reuse numbers with different meanings.
pub const PROFILES: &[KnownProfile] = &[
    // swpkcs11.h (Sansec-style HSM/token header, also shipped with iTrus builds) and the 2009 "yw"
    // pkcs11s.h: CKM_SM2 = CKM_VENDOR_DEFINED + 0x8000, CKK_SM2 = CKK_VENDOR_DEFINED + 4.
    known("sw-sm2-digest", 0x8000_8104, 0x8000_0004, 0x8000_8001, Sm2Input::Digest, false),
    known("sw-sm3-sm2", 0x8000_8100, 0x8000_0004, 0x8000_8001, Sm2Input::ZAndMessage, false),
    known("sw-sm3-sm2-z", 0x8000_8102, 0x8000_0004, 0x8000_8001, Sm2Input::Message, false),
    // IBM ICSF values, as used by xipki's ckm-vendor.properties and swpkcs11.h's "for IBM" block.
    known("ibm-sm2", 0x8005_000B, 0x8005_0002, 0x8005_000A, Sm2Input::Digest, false),
    known("ibm-sm2-sm3", 0x8005_000C, 0x8005_0002, 0x8005_000A, Sm2Input::Message, true),
    // MsSince MK-1 key (mk_sm2.h): values BELOW CKM_VENDOR_DEFINED, reached through raw calls.
    known("mk1-sm2", 0x0001_0002, 0x0001_0001, 0x0001_0009, Sm2Input::Digest, false),
];

impl Sm2VendorConfig {
    /// Resolves the profile and overrides into the numbers the driver uses, or says what is
    /// missing.
    pub fn resolve(&self) -> Result<Sm2Profile> {
        let base = match &self.profile {
            Some(name) => Some(profile(name).ok_or_else(|| {
                let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
                Error::InvalidInput(format!("unknown SM2 profile `{name}`; known: {}", names.join(", ")))
            })?),
            None => None,
        };
        let sign_mechanism = self.sign_mechanism.or(base.as_ref().map(|b| b.sign_mechanism)).ok_or_else(|| {
            Error::InvalidInput("the SM2 settings need `sign_mechanism` (or a `profile`) for this module".into())
        })?;
        let input = self.input.or(base.as_ref().map(|b| b.input)).ok_or_else(|| {
            Error::InvalidInput(
                "the SM2 settings need `input` (digest, message or z-and-message) for this module".into(),
            )
        })?;
        let id_parameter = self.id_parameter.or(base.as_ref().map(|b| b.id_parameter)).unwrap_or(false);
        if id_parameter && input != Sm2Input::Message {
            return Err(Error::InvalidInput("`id_parameter` only makes sense with `input = \"message\"`".into()));
        }
        let changed = base.as_ref().is_none_or(|b| {
            self.sign_mechanism.is_some_and(|m| m != b.sign_mechanism)
                || self.key_type.is_some()
                || self.keygen_mechanism.is_some()
                || self.input.is_some_and(|i| i != b.input)
        });
        Ok(Sm2Profile {
            name: match (&base, changed) {
                (Some(b), false) => b.name.clone(),
                (Some(b), true) => format!("{} (customised)", b.name),
                (None, _) => "custom".into(),
            },
            sign_mechanism,
            key_type: self.key_type.or(base.as_ref().and_then(|b| b.key_type)),
            keygen_mechanism: self.keygen_mechanism.or(base.as_ref().and_then(|b| b.keygen_mechanism)),
            input,
            id_parameter,
        })
    }
}

/// A built-in profile by name.
pub fn profile(name: &str) -> Option<Sm2Profile> {
    PROFILES.iter().find(|p| p.name == name).map(|p| Sm2Profile {
        name: p.name.into(),
        sign_mechanism: p.sign_mechanism,
        key_type: p.key_type,
        keygen_mechanism: p.keygen_mechanism,
        input: p.input,
        id_parameter: p.id_parameter,
    })
}

impl Sm2Profile {
    /// The form ukey's core must prepare ([`ukey_api::Capabilities::input_for`]): the digest, or
    /// the message (also for `Z ‖ M`, where the driver prepends Z itself).
    pub fn input_form(&self) -> InputForm {
        match self.input {
            Sm2Input::Digest => InputForm::Digest,
            Sm2Input::Message | Sm2Input::ZAndMessage => InputForm::Message,
        }
    }

    /// The mechanism parameter: the distinguishing id when the token takes it there.
    pub fn parameter(&self, user_id: &[u8]) -> Option<Vec<u8>> {
        (self.id_parameter && self.input == Sm2Input::Message).then(|| user_id.to_vec())
    }

    /// The bytes handed to `C_Sign`. `public_point` is the key's uncompressed point (`04‖x‖y`),
    /// needed only for `Z ‖ M`.
    pub fn token_data(&self, input: &SignInput, user_id: &[u8], public_point: Option<&[u8]>) -> Result<Vec<u8>> {
        match self.input {
            Sm2Input::Digest => {
                if input.digest.len() != 32 {
                    return Err(Error::InvalidInput(format!(
                        "an SM2 digest is 32 bytes (SM3), got {}",
                        input.digest.len()
                    )));
                }
                Ok(input.digest.clone())
            }
            Sm2Input::Message => {
                if !self.id_parameter && user_id != DEFAULT_SM2_ID {
                    return Err(Error::NotSupported(
                        "this token computes Z with the default id 1234567812345678 only; sign with that id".into(),
                    ));
                }
                message(input)
            }
            Sm2Input::ZAndMessage => {
                let point = public_point.ok_or_else(|| {
                    Error::NotSupported("the token's SM2 public key is not readable, so ukey cannot compute Z".into())
                })?;
                let mut data = sm2_z(user_id, point)?.to_vec();
                data.extend_from_slice(&message(input)?);
                Ok(data)
            }
        }
    }
}

fn message(input: &SignInput) -> Result<Vec<u8>> {
    input.message.clone().ok_or_else(|| {
        Error::NotSupported(
            "this token's SM2 mechanism signs whole messages; a prehashed digest cannot be signed with it".into(),
        )
    })
}

/// `Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)` for an uncompressed point, by the core's
/// one implementation (`ukey_api::crypto::sm2z`).
pub fn sm2_z(user_id: &[u8], public_point: &[u8]) -> Result<[u8; 32]> {
    if public_point.len() != 65 || public_point.first() != Some(&0x04) {
        return Err(Error::Crypto("an SM2 public key must be an uncompressed 65-byte point".into()));
    }
    ukey_api::crypto::sm2_z(public_point, user_id)
}

mod vendor_number {
    //! Vendor numbers as integers (`0x80008100` in TOML) or strings (`"0x80008100"` in JSON).
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> std::result::Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_str(&format!("{n:#x}")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Int(n)) => Ok(Some(n)),
            Some(Raw::Text(t)) => parse(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }

    pub(crate) fn parse(text: &str) -> std::result::Result<u64, String> {
        let t = text.trim();
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
            None => t.replace('_', "").parse(),
        };
        parsed.map_err(|_| format!("`{text}` is not a number (write 0x80008100 or 2147516672)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm2::dsa::signature::hazmat::PrehashVerifier;
    use sm2::dsa::signature::{Signer, Verifier};
    use sm3::{Digest, Sm3};

    fn input(msg: &[u8], digest: Vec<u8>) -> SignInput {
        SignInput { digest, message: Some(msg.to_vec()) }
    }

    #[test]
    fn profiles_resolve_and_overrides_apply() {
        let cfg = Sm2VendorConfig { profile: Some("sw-sm2-digest".into()), ..Default::default() };
        let p = cfg.resolve().unwrap();
        assert_eq!((p.sign_mechanism, p.key_type, p.input), (0x8000_8104, Some(0x8000_0004), Sm2Input::Digest));
        assert_eq!(p.input_form(), InputForm::Digest);
        assert_eq!(p.name, "sw-sm2-digest");

        let cfg = Sm2VendorConfig {
            profile: Some("sw-sm2-digest".into()),
            sign_mechanism: Some(0x8000_8105),
            ..Default::default()
        };
        let p = cfg.resolve().unwrap();
        assert_eq!(p.sign_mechanism, 0x8000_8105);
        assert!(p.name.contains("customised"));
    }

    #[test]
    fn explicit_numbers_need_mechanism_and_input() {
        let err = Sm2VendorConfig { input: Some(Sm2Input::Digest), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("sign_mechanism"), "{err}");
        let err = Sm2VendorConfig { sign_mechanism: Some(1), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("input"), "{err}");
        let err = Sm2VendorConfig { profile: Some("nope".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("ibm-sm2"), "{err}");
        let err = Sm2VendorConfig {
            sign_mechanism: Some(1),
            input: Some(Sm2Input::Digest),
            id_parameter: Some(true),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("id_parameter"), "{err}");
    }

    #[test]
    fn numbers_parse_from_json_hex_strings_and_integers() {
        let cfg: Sm2VendorConfig =
            serde_json::from_str(r#"{"sign_mechanism":"0x8000_8100","key_type":2147483652,"input":"z-and-message"}"#)
                .unwrap();
        let p = cfg.resolve().unwrap();
        assert_eq!((p.sign_mechanism, p.key_type, p.input), (0x8000_8100, Some(0x8000_0004), Sm2Input::ZAndMessage));
        assert_eq!(p.input_form(), InputForm::Message);
        assert!(serde_json::from_str::<Sm2VendorConfig>(r#"{"sign_mechanism":"0xZZ"}"#).is_err());
        let text = serde_json::to_string(&cfg).unwrap();
        assert!(text.contains("0x80008100"), "{text}");
    }

    #[test]
    fn input_selection_per_form() {
        let sk = sm2::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let point = sk.public_key().to_sec1_bytes();
        let msg = b"pay 100 yuan";
        let id = DEFAULT_SM2_ID;
        let z = sm2_z(id, &point).unwrap();
        let e: Vec<u8> = Sm3::new().chain_update(z).chain_update(msg).finalize().to_vec();

        let digest = profile("sw-sm2-digest").unwrap();
        assert_eq!(digest.token_data(&input(msg, e.clone()), id, None).unwrap(), e);
        assert!(digest.token_data(&input(msg, vec![0; 20]), id, None).is_err());

        let message = profile("sw-sm3-sm2-z").unwrap();
        assert_eq!(message.token_data(&input(msg, e.clone()), id, None).unwrap(), msg.to_vec());
        assert!(matches!(message.token_data(&input(msg, e.clone()), b"alice", None), Err(Error::NotSupported(_))));
        let prehashed = SignInput { digest: e.clone(), message: None };
        assert!(matches!(message.token_data(&prehashed, id, None), Err(Error::NotSupported(_))));

        let with_param = profile("ibm-sm2-sm3").unwrap();
        assert_eq!(with_param.parameter(b"alice"), Some(b"alice".to_vec()));
        assert_eq!(with_param.token_data(&input(msg, e.clone()), b"alice", None).unwrap(), msg.to_vec());
        assert_eq!(message.parameter(id), None);

        let z_message = profile("sw-sm3-sm2").unwrap();
        let data = z_message.token_data(&input(msg, e.clone()), id, Some(&point)).unwrap();
        assert_eq!(&data[..32], &z);
        assert_eq!(&data[32..], msg);
        assert!(z_message.token_data(&input(msg, e), id, None).is_err());
    }

    #[test]
    fn z_matches_the_sm2_crate() {
        // A signature made by the sm2 crate over M with the default id verifies as a prehash
        // against SM3(Z ‖ M) only if our Z is the GM/T 0003 one.
        let sk = sm2::SecretKey::from_slice(&[0x42u8; 32]).unwrap();
        let distid = std::str::from_utf8(DEFAULT_SM2_ID).unwrap();
        let signer = sm2::dsa::SigningKey::new(distid, &sk).unwrap();
        let msg = b"message digest";
        let sig: sm2::dsa::Signature = signer.sign(msg);
        let verifier = signer.verifying_key();
        verifier.verify(msg, &sig).unwrap();
        let z = sm2_z(DEFAULT_SM2_ID, &sk.public_key().to_sec1_bytes()).unwrap();
        let e = Sm3::new().chain_update(z).chain_update(msg).finalize();
        verifier.verify_prehash(&e, &sig).unwrap();
        let wrong = sm2_z(b"1234567812345679", &sk.public_key().to_sec1_bytes()).unwrap();
        let e_wrong = Sm3::new().chain_update(wrong).chain_update(msg).finalize();
        assert!(verifier.verify_prehash(&e_wrong, &sig).is_err());
    }

    #[test]
    fn z_refuses_compressed_points() {
        assert!(sm2_z(DEFAULT_SM2_ID, &[0x02; 33]).is_err());
    }
}
