//! Signing: which PKCS#11 mechanism serves a ukey mechanism on this token, with which input, and
//! the signature in the contract's form.
//!
//! The choice comes from what the token lists (`C_GetMechanismList`) and, for SM2, from the
//! module's vendor profile checked with `C_GetMechanismInfo`. Digest-signing mechanisms are
//! preferred (`CKM_ECDSA`, `CKM_RSA_PKCS` with a DigestInfo, `CKM_RSA_PKCS_PSS`): the core hashes
//! once, the PIN dialog shows that hash, and prehashed input works. Tokens that only hash for
//! themselves (`CKM_ECDSA_SHA256`, `CKM_SHA256_RSA_PKCS`, `CKM_SHA256_RSA_PKCS_PSS`) get the
//! message. EC and SM2 signatures come back as raw `r ‖ s` (DER from a token is converted).

use std::collections::HashSet;

use cryptoki::mechanism::MechanismType;
use ukey_api::mechanism::MechanismKind;
use ukey_api::{Credential, Error, InputForm, KeyAlgorithm, Mechanism, Result, SignInput};

use crate::raw::{narrow, wide};
use crate::session::{FoundKey, Tx};
use crate::sm2::Sm2Profile;

/// `CKF_SIGN`.
const CKF_SIGN: u64 = 0x800;
/// `CKF_GENERATE_KEY_PAIR`.
const CKF_GENERATE_KEY_PAIR: u64 = 0x10000;

/// What a token offers for signing and key generation.
#[derive(Debug, Clone, Default)]
pub struct Offered {
    standard: HashSet<u64>,
    /// The module's SM2 profile, when the token offers its signing mechanism.
    sm2: Option<Sm2Profile>,
    /// Why SM2 is not available, for error messages.
    sm2_missing: Option<String>,
    /// The token can generate SM2 keys with the profile's mechanism.
    sm2_keygen: bool,
    /// Largest EC / RSA key sizes the generation mechanisms accept (bits), when offered.
    ec_keygen_max: Option<usize>,
    rsa_keygen_max: Option<usize>,
    /// The two limits above were read.
    keygen_read: bool,
}

/// How one signature is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `CKM_ECDSA` over the digest.
    Ecdsa,
    /// `CKM_ECDSA_SHA256` / `CKM_ECDSA_SHA384` over the message.
    EcdsaHashing(MechanismType),
    /// `CKM_RSA_PKCS` over the DigestInfo of the mechanism's hash.
    RsaPkcsDigestInfo,
    /// `CKM_SHA256_RSA_PKCS` over the message.
    Sha256RsaPkcs,
    /// `CKM_RSA_PKCS_PSS` over the digest (SHA-256, MGF1-SHA-256, 32-byte salt).
    RsaPss,
    /// `CKM_SHA256_RSA_PKCS_PSS` over the message.
    Sha256RsaPss,
    /// The module's vendor SM2 mechanism.
    VendorSm2(Sm2Profile),
}

/// A planned signature: the step and the input the core must prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignPlan {
    /// The PKCS#11 side.
    pub step: Step,
    /// What ukey's core prepares.
    pub form: InputForm,
}

impl Offered {
    /// Reads what the token in `tx` offers.
    pub fn read(tx: &mut Tx<'_>) -> Result<Offered> {
        let list = tx.mechanisms()?;
        let standard: HashSet<u64> = list.iter().map(|m| wide(**m)).collect();
        let slot = tx.slot();
        let mut offered = Offered { standard, ..Default::default() };
        match tx.token().settings().sm2.clone() {
            None => {
                offered.sm2_missing = Some(
                    "this module has no SM2 mechanism configured; if the token does SM2, set its vendor numbers \
                     in the module's `sm2` settings (see drivers/pkcs11/VENDOR-SM2.md)"
                        .into(),
                );
            }
            Some(profile) => {
                let raw = tx.token().module().raw().map_err(Error::Device)?;
                let info = raw.mechanism_info(slot, profile.sign_mechanism);
                let info = info.map_err(|e| tx.fail(e, "asking the token about its SM2 mechanism"))?;
                if info.is_some_and(|i| i.flags & CKF_SIGN != 0) {
                    if let Some(keygen) = profile.keygen_mechanism {
                        let info = raw.mechanism_info(slot, keygen);
                        let info = info.map_err(|e| tx.fail(e, "asking the token about SM2 key generation"))?;
                        offered.sm2_keygen = info.is_some_and(|i| i.flags & CKF_GENERATE_KEY_PAIR != 0);
                    }
                    offered.sm2 = Some(profile);
                } else {
                    offered.sm2_missing = Some(format!(
                        "the token does not offer the configured SM2 mechanism {:#x} (profile {}) for signing",
                        profile.sign_mechanism, profile.name
                    ));
                }
            }
        }
        Ok(offered)
    }

    /// Adds the key sizes the generation mechanisms accept (`C_GetMechanismInfo`), which only
    /// capabilities and key generation need; a signature never pays for them.
    pub fn read_keygen_limits(&mut self, tx: &mut Tx<'_>) {
        let slot = tx.slot();
        let ctx = tx.token().module().ctx().clone();
        let max_size = |m: MechanismType| -> Option<usize> {
            if !self.standard.contains(&wide(*m)) {
                return None;
            }
            ctx.get_mechanism_info(slot, m).ok().map(|i| i.max_key_size())
        };
        self.ec_keygen_max = max_size(MechanismType::ECC_KEY_PAIR_GEN);
        self.rsa_keygen_max = max_size(MechanismType::RSA_PKCS_KEY_PAIR_GEN);
        self.keygen_read = true;
    }

    /// True once [`Offered::read_keygen_limits`] ran.
    pub fn has_keygen_limits(&self) -> bool {
        self.keygen_read
    }

    /// An `Offered` from explicit parts (tests, and capability reasoning without a token).
    pub fn from_parts(standard: impl IntoIterator<Item = u64>, sm2: Option<Sm2Profile>) -> Self {
        Offered { standard: standard.into_iter().collect(), sm2, ..Default::default() }
    }

    fn has(&self, m: MechanismType) -> bool {
        self.standard.contains(&wide(*m))
    }

    /// Picks the PKCS#11 side of a signature, or says clearly why the key cannot make it here.
    pub fn plan(&self, mechanism: &Mechanism, algorithm: KeyAlgorithm) -> Result<SignPlan> {
        mechanism.check_key(algorithm)?;
        let digest = |step| Ok(SignPlan { step, form: InputForm::Digest });
        let message = |step| Ok(SignPlan { step, form: InputForm::Message });
        let absent = |what: &str| Err(Error::NotSupported(format!("this token offers no {what} mechanism")));
        match mechanism {
            Mechanism::EcdsaSha256 | Mechanism::EcdsaSha384 => {
                let hashing = match mechanism {
                    Mechanism::EcdsaSha256 => MechanismType::ECDSA_SHA256,
                    _ => MechanismType::ECDSA_SHA384,
                };
                if self.has(MechanismType::ECDSA) {
                    digest(Step::Ecdsa)
                } else if self.has(hashing) {
                    message(Step::EcdsaHashing(hashing))
                } else {
                    absent("ECDSA")
                }
            }
            Mechanism::RsaPkcs1Sha256 => {
                if self.has(MechanismType::RSA_PKCS) {
                    digest(Step::RsaPkcsDigestInfo)
                } else if self.has(MechanismType::SHA256_RSA_PKCS) {
                    message(Step::Sha256RsaPkcs)
                } else {
                    absent("RSA PKCS#1 v1.5")
                }
            }
            // A DigestInfo of any SHA hash needs the raw PKCS#1 v1.5 mechanism.
            Mechanism::RsaPkcs1 { .. } if self.has(MechanismType::RSA_PKCS) => digest(Step::RsaPkcsDigestInfo),
            Mechanism::RsaPkcs1 { .. } => absent("raw RSA PKCS#1 v1.5 (CKM_RSA_PKCS)"),
            Mechanism::RsaPssSha256 => {
                if self.has(MechanismType::RSA_PKCS_PSS) {
                    digest(Step::RsaPss)
                } else if self.has(MechanismType::SHA256_RSA_PKCS_PSS) {
                    message(Step::Sha256RsaPss)
                } else {
                    absent("RSA-PSS")
                }
            }
            Mechanism::Sm2Sm3 { .. } => match &self.sm2 {
                Some(profile) => Ok(SignPlan { step: Step::VendorSm2(profile.clone()), form: profile.input_form() }),
                None => Err(Error::NotSupported(
                    self.sm2_missing.clone().unwrap_or_else(|| "this token offers no SM2 mechanism".into()),
                )),
            },
        }
    }

    /// The ukey mechanisms a key of `algorithm` can make on this token.
    pub fn mechanisms_for(&self, algorithm: KeyAlgorithm) -> Vec<MechanismKind> {
        MechanismKind::ALL.into_iter().filter(|k| self.plan(&k.with_default_params(), algorithm).is_ok()).collect()
    }

    /// Every ukey mechanism some key on this token could make, with its input form.
    pub fn sign_capabilities(&self) -> Vec<(MechanismKind, InputForm)> {
        let algorithms = [KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }, KeyAlgorithm::Sm2];
        MechanismKind::ALL
            .into_iter()
            .filter_map(|k| {
                algorithms.iter().find_map(|a| self.plan(&k.with_default_params(), *a).ok()).map(|p| (k, p.form))
            })
            .collect()
    }

    /// Key algorithms the token can generate.
    pub fn generate(&self) -> Vec<KeyAlgorithm> {
        let mut out = Vec::new();
        if let Some(max) = self.ec_keygen_max {
            out.push(KeyAlgorithm::P256);
            // Some modules report 0 for "no limit".
            if max == 0 || max >= 384 {
                out.push(KeyAlgorithm::P384);
            }
        }
        if let Some(max) = self.rsa_keygen_max {
            for bits in [2048u32, 3072, 4096] {
                if max == 0 || max >= bits as usize {
                    out.push(KeyAlgorithm::Rsa { bits });
                }
            }
        }
        if self.sm2_keygen {
            out.push(KeyAlgorithm::Sm2);
        }
        out
    }

    /// The SM2 profile when the token offers it.
    pub fn sm2(&self) -> Option<&Sm2Profile> {
        self.sm2.as_ref()
    }

    /// True when the token lists this mechanism.
    pub fn offers(&self, m: MechanismType) -> bool {
        self.has(m)
    }
}

/// The `C_Sign` data for a plan.
pub fn token_data(
    plan: &SignPlan,
    mechanism: &Mechanism,
    public_point: Option<&[u8]>,
    input: &SignInput,
) -> Result<Vec<u8>> {
    let want = mechanism.hash().output_len();
    let digest = || {
        if input.digest.len() == want {
            Ok(input.digest.clone())
        } else {
            Err(Error::InvalidInput(format!(
                "a {} digest is {want} bytes, got {}",
                mechanism.hash().as_str(),
                input.digest.len()
            )))
        }
    };
    let message = || {
        input.message.clone().ok_or_else(|| {
            Error::NotSupported(format!(
                "this token signs {} only over whole messages; a prehashed digest cannot be signed with it",
                mechanism.name()
            ))
        })
    };
    match &plan.step {
        Step::Ecdsa | Step::RsaPss => digest(),
        Step::RsaPkcsDigestInfo => ukey_api::crypto::rsapad::digest_info(mechanism.hash(), &digest()?),
        Step::EcdsaHashing(_) | Step::Sha256RsaPkcs | Step::Sha256RsaPss => message(),
        Step::VendorSm2(profile) => {
            let user_id = match mechanism {
                Mechanism::Sm2Sm3 { user_id } => user_id.as_slice(),
                _ => ukey_api::DEFAULT_SM2_ID,
            };
            profile.token_data(input, user_id, public_point)
        }
    }
}

/// The mechanism as a number and parameter bytes for the module's `C_SignInit`.
fn raw_mechanism(step: &Step, mechanism: &Mechanism) -> (u64, Option<Vec<u8>>) {
    let pss = || {
        let mut bytes = Vec::new();
        bytes.extend(cryptoki_sys::CKM_SHA256.to_ne_bytes());
        bytes.extend(cryptoki_sys::CKG_MGF1_SHA256.to_ne_bytes());
        bytes.extend(narrow(32).to_ne_bytes());
        Some(bytes)
    };
    match step {
        Step::Ecdsa => (wide(*MechanismType::ECDSA), None),
        Step::EcdsaHashing(m) => (wide(**m), None),
        Step::RsaPkcsDigestInfo => (wide(*MechanismType::RSA_PKCS), None),
        Step::Sha256RsaPkcs => (wide(*MechanismType::SHA256_RSA_PKCS), None),
        Step::RsaPss => (wide(*MechanismType::RSA_PKCS_PSS), pss()),
        Step::Sha256RsaPss => (wide(*MechanismType::SHA256_RSA_PKCS_PSS), pss()),
        Step::VendorSm2(profile) => {
            let user_id = match mechanism {
                Mechanism::Sm2Sm3 { user_id } => user_id.as_slice(),
                _ => ukey_api::DEFAULT_SM2_ID,
            };
            (profile.sign_mechanism, profile.parameter(user_id))
        }
    }
}

/// The largest signature `algorithm` can make, in bytes: an EC signature in DER (some tokens
/// answer DER instead of the standard's raw `r ‖ s`), an RSA signature the modulus size. The
/// first `C_Sign` gets a buffer this large, so no length query is needed.
pub fn signature_capacity(algorithm: KeyAlgorithm) -> usize {
    // SEQUENCE { INTEGER r, INTEGER s }: each integer may need a leading zero byte.
    let ec_der = |field: usize| 2 + 2 * (2 + field + 1) + 1;
    match algorithm {
        KeyAlgorithm::P256 | KeyAlgorithm::Sm2 => ec_der(32),
        KeyAlgorithm::P384 => ec_der(48),
        KeyAlgorithm::Rsa { bits } => (bits as usize).div_ceil(8),
    }
}

/// Signs `data` with `key` as planned, logging in again for the key alone when it demands it.
/// Returns the contract's signature form.
///
/// Every signature goes through the module's own `C_SignInit` / `C_Sign` with a buffer sized
/// from the key ([`signature_capacity`]): two calls per signature, where cryptoki's
/// `Session::sign` makes three (it always asks for the length first).
pub fn sign_with(
    tx: &mut Tx<'_>,
    key: &FoundKey,
    plan: &SignPlan,
    mechanism: &Mechanism,
    data: &[u8],
    auth: &Credential,
) -> std::result::Result<Vec<u8>, SignFailure> {
    let during = || format!("signing with {}", mechanism.name());
    let raw = tx.token().module().raw().map_err(|m| SignFailure::Other(Error::Device(m)))?;
    let (value, parameter) = raw_mechanism(&plan.step, mechanism);
    let capacity = Some(signature_capacity(key.algorithm));
    let session = tx.session().map_err(SignFailure::Other)?;
    let signature = if key.always_authenticate {
        raw.sign_init(session, value, parameter.as_deref(), key.handle)
            .map_err(|e| SignFailure::from_ck(tx, e, &during()))?;
        tx.login_context_specific(auth, &during()).map_err(SignFailure::Other)?;
        let session = tx.session().map_err(SignFailure::Other)?;
        raw.sign_after_init(session, data, capacity).map_err(|e| SignFailure::from_ck(tx, e, &during()))?
    } else {
        raw.sign(session, value, parameter.as_deref(), key.handle, data, capacity)
            .map_err(|e| SignFailure::from_ck(tx, e, &during()))?
    };
    // Tokens are asked for raw r‖s by the standard; some answer DER. Either becomes raw.
    ukey_api::crypto::signature_to_raw(key.algorithm, &signature)
        .map_err(|e| SignFailure::Other(Error::Device(format!("the token returned a signature ukey cannot read: {e}"))))
}

/// Why a signature failed: a stale key handle (the caller finds the key again and retries) or
/// anything else.
#[derive(Debug)]
pub enum SignFailure {
    /// The key handle is no longer valid.
    StaleHandle,
    /// A real failure.
    Other(Error),
}

impl SignFailure {
    fn from_ck(tx: &mut Tx<'_>, err: cryptoki::error::Error, during: &str) -> Self {
        if crate::errors::is_stale_handle(&err) {
            SignFailure::StaleHandle
        } else {
            SignFailure::Other(tx.fail(err, during))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sm2::profile;

    fn softhsm_like() -> Offered {
        Offered::from_parts(
            [
                MechanismType::ECDSA,
                MechanismType::RSA_PKCS,
                MechanismType::SHA256_RSA_PKCS,
                MechanismType::RSA_PKCS_PSS,
            ]
            .map(|m| wide(*m)),
            None,
        )
    }

    #[test]
    fn digest_mechanisms_are_preferred() {
        let o = softhsm_like();
        let p = o.plan(&Mechanism::EcdsaSha256, KeyAlgorithm::P256).unwrap();
        assert_eq!((p.step, p.form), (Step::Ecdsa, InputForm::Digest));
        let p = o.plan(&Mechanism::RsaPkcs1Sha256, KeyAlgorithm::Rsa { bits: 2048 }).unwrap();
        assert_eq!(p.step, Step::RsaPkcsDigestInfo);
        let p = o.plan(&Mechanism::RsaPssSha256, KeyAlgorithm::Rsa { bits: 2048 }).unwrap();
        assert_eq!(p.step, Step::RsaPss);
    }

    #[test]
    fn hashing_mechanisms_get_the_message() {
        let o = Offered::from_parts(
            [MechanismType::ECDSA_SHA256, MechanismType::SHA256_RSA_PKCS, MechanismType::SHA256_RSA_PKCS_PSS]
                .map(|m| wide(*m)),
            None,
        );
        let p = o.plan(&Mechanism::EcdsaSha256, KeyAlgorithm::P256).unwrap();
        assert_eq!((p.step.clone(), p.form), (Step::EcdsaHashing(MechanismType::ECDSA_SHA256), InputForm::Message));
        assert!(o.plan(&Mechanism::EcdsaSha384, KeyAlgorithm::P384).is_err());
        let prehashed = SignInput { digest: vec![0; 32], message: None };
        let err = token_data(&p, &Mechanism::EcdsaSha256, None, &prehashed).unwrap_err();
        assert!(err.to_string().contains("prehashed"), "{err}");
        assert_eq!(
            o.plan(&Mechanism::RsaPkcs1Sha256, KeyAlgorithm::Rsa { bits: 3072 }).unwrap().step,
            Step::Sha256RsaPkcs
        );
        assert_eq!(
            o.plan(&Mechanism::RsaPssSha256, KeyAlgorithm::Rsa { bits: 3072 }).unwrap().step,
            Step::Sha256RsaPss
        );
    }

    #[test]
    fn rsa_key_asked_for_sm2_is_refused_clearly() {
        let o = Offered::from_parts([], profile("sw-sm2-digest"));
        let err = o.plan(&Mechanism::parse("sm2", None).unwrap(), KeyAlgorithm::Rsa { bits: 2048 }).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)));
        assert!(err.to_string().contains("rsa-pkcs1-sha256"), "{err}");
    }

    #[test]
    fn sm2_needs_a_configured_and_offered_mechanism() {
        let none = softhsm_like();
        let err = none.plan(&Mechanism::parse("sm2", None).unwrap(), KeyAlgorithm::Sm2).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "{err}");
        let with = Offered::from_parts([], profile("sw-sm3-sm2-z"));
        let p = with.plan(&Mechanism::parse("sm2", None).unwrap(), KeyAlgorithm::Sm2).unwrap();
        assert_eq!(p.form, InputForm::Message);
        assert_eq!(with.mechanisms_for(KeyAlgorithm::Sm2), vec![MechanismKind::Sm2Sm3]);
        assert!(with.sign_capabilities().contains(&(MechanismKind::Sm2Sm3, InputForm::Message)));
    }

    #[test]
    fn digest_info_and_lengths() {
        let o = softhsm_like();
        let p = o.plan(&Mechanism::RsaPkcs1Sha256, KeyAlgorithm::Rsa { bits: 2048 }).unwrap();
        let data = token_data(&p, &Mechanism::RsaPkcs1Sha256, None, &SignInput { digest: vec![7; 32], message: None })
            .unwrap();
        assert_eq!(data.len(), 51);
        assert_eq!(&data[..4], &[0x30, 0x31, 0x30, 0x0d]);
        let short = SignInput { digest: vec![7; 20], message: None };
        assert!(matches!(token_data(&p, &Mechanism::RsaPkcs1Sha256, None, &short), Err(Error::InvalidInput(_))));
        // A SHA-1 DigestInfo (pkcs11-tool --test) goes through CKM_RSA_PKCS too.
        let sha1 = Mechanism::RsaPkcs1 { hash: ukey_api::HashAlg::Sha1 };
        let p = o.plan(&sha1, KeyAlgorithm::Rsa { bits: 2048 }).unwrap();
        assert_eq!(p.step, Step::RsaPkcsDigestInfo);
        let data = token_data(&p, &sha1, None, &short).unwrap();
        assert_eq!(hex::encode(&data[..15]), "3021300906052b0e03021a05000414");
        assert!(o.mechanisms_for(KeyAlgorithm::Rsa { bits: 2048 }).contains(&MechanismKind::RsaPkcs1));
    }

    #[test]
    fn signature_capacity_holds_the_largest_der_signature() {
        // The largest P-256 ECDSA-Sig-Value: both integers 33 bytes (leading zero).
        let mut der = vec![0x30, 70, 0x02, 33, 0x00];
        der.extend([0x80; 32]);
        der.extend([0x02, 33, 0x00]);
        der.extend([0x80; 32]);
        assert!(der.len() <= signature_capacity(KeyAlgorithm::P256));
        assert!(104 <= signature_capacity(KeyAlgorithm::P384));
        assert_eq!(signature_capacity(KeyAlgorithm::Rsa { bits: 2048 }), 256);
        assert_eq!(signature_capacity(KeyAlgorithm::Rsa { bits: 3071 }), 384);
    }

    #[test]
    fn pss_raw_parameter_is_three_ulongs() {
        let (m, p) = raw_mechanism(&Step::RsaPss, &Mechanism::RsaPssSha256);
        assert_eq!(m, wide(*MechanismType::RSA_PKCS_PSS));
        assert_eq!(p.unwrap().len(), 3 * std::mem::size_of::<cryptoki_sys::CK_ULONG>());
    }
}
