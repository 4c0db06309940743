//! The PKCS#11 signature mechanisms the module offers, how each maps onto a mechanism of the
//! carrier contract, and the input each turns into (the module hashes where the mechanism
//! includes a hash, so every carrier gets the digest the contract defines).
//!
//! SM2 has no PKCS#11 number; the module uses the vendor numbers of `swpkcs11.h`, the header
//! shipped by Sansec-style HSMs and tokens (also with iTrus builds), which ukey's PKCS#11 driver
//! knows too: `CKK_SM2 = CKK_VENDOR_DEFINED + 4`, `CKM_SM2 = CKM_VENDOR_DEFINED + 0x8000`,
//! `CKM_SM3_SM2_APPID1 = CKM_SM2 + 0x102` (the message; SM3 over `Z ‖ M` with the GM/T 0009
//! default id `1234567812345678`; raw `r ‖ s`) and `CKM_SM2_SIGN_NO_DER = CKM_SM2 + 0x105` (a
//! 32-byte `e = SM3(Z ‖ M)` the program computed; raw `r ‖ s`).

use cryptoki_sys::*;

use ukey_api::crypto::hash::Hasher;
use ukey_api::crypto::prepare::message_hasher;
use ukey_api::mechanism::MechanismKind;
use ukey_api::{Capabilities, DEFAULT_SM2_ID, HashAlg, InputForm, KeyAlgorithm, KeyObject, Mechanism};

use crate::rv::P11Result;

/// `CKK_SM2` of `swpkcs11.h`.
pub const CKK_SM2: CK_KEY_TYPE = CKK_VENDOR_DEFINED + 4;
/// `CKM_SM3_SM2_APPID1` of `swpkcs11.h`: SM2 over the message, default id, raw `r ‖ s`.
pub const CKM_SM3_SM2_APPID1: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED + 0x8102;
/// `CKM_SM2_SIGN_NO_DER` of `swpkcs11.h`: SM2 over a given `e`, raw `r ‖ s`.
pub const CKM_SM2_SIGN_NO_DER: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED + 0x8105;

/// The hashing RSA PKCS#1 v1.5 mechanisms served by the contract's [`Mechanism::RsaPkcs1`].
const HASHED_RSA_PKCS: [(CK_MECHANISM_TYPE, HashAlg); 4] = [
    (CKM_SHA1_RSA_PKCS, HashAlg::Sha1),
    (CKM_SHA224_RSA_PKCS, HashAlg::Sha224),
    (CKM_SHA384_RSA_PKCS, HashAlg::Sha384),
    (CKM_SHA512_RSA_PKCS, HashAlg::Sha512),
];

/// Most message bytes kept for carriers that hash the message themselves.
const MAX_KEPT_MESSAGE: usize = 2 * 1024 * 1024;
/// Most bytes a raw (prehashed) mechanism accepts: a DigestInfo or a digest.
const MAX_RAW_INPUT: usize = 1024;

/// The PKCS#11 mechanisms a carrier with these capabilities offers, ascending.
pub fn offered(caps: &Capabilities) -> Vec<CK_MECHANISM_TYPE> {
    let mut out = Vec::new();
    for (kind, form) in &caps.sign {
        let digest = *form == InputForm::Digest;
        if *kind == MechanismKind::RsaPkcs1 {
            // Any SHA DigestInfo: raw CKM_RSA_PKCS (the program brings the DigestInfo) and the
            // hashing mechanisms the contract's SHA-256 one does not already cover.
            if digest {
                out.push(CKM_RSA_PKCS);
            }
            out.extend(HASHED_RSA_PKCS.iter().map(|(m, _)| *m));
            continue;
        }
        let (raw, hashed) = match kind {
            MechanismKind::EcdsaSha256 => (CKM_ECDSA, CKM_ECDSA_SHA256),
            MechanismKind::EcdsaSha384 => (CKM_ECDSA, CKM_ECDSA_SHA384),
            MechanismKind::RsaPkcs1Sha256 => (CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS),
            MechanismKind::RsaPssSha256 => (CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS),
            MechanismKind::Sm2Sm3 => (CKM_SM2_SIGN_NO_DER, CKM_SM3_SM2_APPID1),
            MechanismKind::RsaPkcs1 => continue,
        };
        if digest {
            out.push(raw);
        }
        out.push(hashed);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// What `C_GetMechanismInfo` says about one mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechanismInfo {
    /// Smallest key, bits.
    pub min_key_bits: CK_ULONG,
    /// Largest key, bits.
    pub max_key_bits: CK_ULONG,
    /// `CKF_*` flags.
    pub flags: CK_FLAGS,
}

/// The info of a mechanism on a carrier, or `None` when it does not offer it.
pub fn info(mechanism: CK_MECHANISM_TYPE, caps: &Capabilities, hardware: bool) -> Option<MechanismInfo> {
    if !offered(caps).contains(&mechanism) {
        return None;
    }
    let hw = if hardware { CKF_HW } else { 0 };
    let ec = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    Some(match family(mechanism)? {
        Family::Ecdsa => MechanismInfo { min_key_bits: 256, max_key_bits: 384, flags: CKF_SIGN | hw | ec },
        Family::RsaPkcs1 | Family::RsaPss => {
            MechanismInfo { min_key_bits: 1024, max_key_bits: 4096, flags: CKF_SIGN | hw }
        }
        Family::Sm2 => MechanismInfo { min_key_bits: 256, max_key_bits: 256, flags: CKF_SIGN | hw | ec },
    })
}

/// The key families, each with its own signature format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Ecdsa,
    RsaPkcs1,
    RsaPss,
    Sm2,
}

fn family(mechanism: CK_MECHANISM_TYPE) -> Option<Family> {
    Some(match mechanism {
        CKM_ECDSA | CKM_ECDSA_SHA256 | CKM_ECDSA_SHA384 => Family::Ecdsa,
        CKM_RSA_PKCS | CKM_SHA256_RSA_PKCS | CKM_SHA1_RSA_PKCS | CKM_SHA224_RSA_PKCS | CKM_SHA384_RSA_PKCS
        | CKM_SHA512_RSA_PKCS => Family::RsaPkcs1,
        CKM_RSA_PKCS_PSS | CKM_SHA256_RSA_PKCS_PSS => Family::RsaPss,
        CKM_SM2_SIGN_NO_DER | CKM_SM3_SM2_APPID1 => Family::Sm2,
        _ => return None,
    })
}

/// The PKCS#11 key type of a key algorithm.
pub fn key_type(alg: KeyAlgorithm) -> CK_KEY_TYPE {
    match alg {
        KeyAlgorithm::P256 | KeyAlgorithm::P384 => CKK_EC,
        KeyAlgorithm::Rsa { .. } => CKK_RSA,
        KeyAlgorithm::Sm2 => CKK_SM2,
    }
}

/// The mechanisms a key can be used with on a carrier (`CKA_ALLOWED_MECHANISMS`).
pub fn for_key(key: &KeyObject, caps: &Capabilities) -> Vec<CK_MECHANISM_TYPE> {
    let usable = Capabilities {
        sign: caps.sign.iter().filter(|(kind, _)| key.mechanisms.contains(kind)).copied().collect(),
        ..Capabilities::default()
    };
    offered(&usable)
}

/// Length of a signature by a key, so a program can size its buffer before anything is signed.
pub fn signature_len(alg: KeyAlgorithm) -> usize {
    match alg {
        KeyAlgorithm::Rsa { bits } => (bits as usize).div_ceil(8),
        other => other.ec_field_len().unwrap_or(32) * 2,
    }
}

/// One signing operation from `C_SignInit` to its end: what is collected and how it becomes the
/// contract's input.
pub struct SignPlan {
    mechanism: CK_MECHANISM_TYPE,
    key: KeyAlgorithm,
    family: Family,
    collect: Collect,
    keep_message: bool,
    message: Vec<u8>,
    message_too_long: bool,
    /// The contract mechanisms the carrier offers for this key, with their input forms.
    usable: Vec<(MechanismKind, InputForm)>,
}

enum Collect {
    /// A prehashed input (a digest or a DigestInfo), collected whole.
    Raw(Vec<u8>),
    /// The message, hashed as it arrives.
    Hash(Hasher),
}

/// What the carrier is asked to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Contract mechanism.
    pub mechanism: Mechanism,
    /// The contract's digest.
    pub digest: Vec<u8>,
    /// The message, when kept.
    pub message: Option<Vec<u8>>,
}

impl SignPlan {
    /// Checks the mechanism, its parameter and the key, as `C_SignInit` must.
    pub fn new(
        mechanism: CK_MECHANISM_TYPE,
        parameter: &[u8],
        key: &KeyObject,
        spki: Option<&[u8]>,
        caps: &Capabilities,
    ) -> P11Result<Self> {
        let family = family(mechanism).ok_or(CKR_MECHANISM_INVALID)?;
        if !for_key(key, caps).contains(&mechanism) {
            let compatible = matches!(
                (family, key.algorithm),
                (Family::Ecdsa, KeyAlgorithm::P256 | KeyAlgorithm::P384)
                    | (Family::RsaPkcs1 | Family::RsaPss, KeyAlgorithm::Rsa { .. })
                    | (Family::Sm2, KeyAlgorithm::Sm2)
            );
            return Err(if compatible { CKR_MECHANISM_INVALID } else { CKR_KEY_TYPE_INCONSISTENT });
        }
        match family {
            Family::RsaPss => check_pss_parameter(parameter)?,
            _ if !parameter.is_empty() => return Err(CKR_MECHANISM_PARAM_INVALID),
            _ => {}
        }
        let usable: Vec<(MechanismKind, InputForm)> =
            caps.sign.iter().filter(|(kind, _)| key.mechanisms.contains(kind)).copied().collect();
        let hashed = |alg: HashAlg| Collect::Hash(Hasher::new(alg));
        let collect = match mechanism {
            CKM_ECDSA | CKM_RSA_PKCS | CKM_RSA_PKCS_PSS | CKM_SM2_SIGN_NO_DER => Collect::Raw(Vec::new()),
            CKM_ECDSA_SHA256 | CKM_SHA256_RSA_PKCS | CKM_SHA256_RSA_PKCS_PSS => hashed(HashAlg::Sha256),
            CKM_ECDSA_SHA384 => hashed(HashAlg::Sha384),
            m if let Some(hash) = hashed_rsa_pkcs(m) => hashed(hash),
            CKM_SM3_SM2_APPID1 => {
                let sm2 = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
                // Z depends on the public key: without it there is nothing to hash over.
                Collect::Hash(message_hasher(&sm2, spki).map_err(|_| CKR_KEY_FUNCTION_NOT_PERMITTED)?)
            }
            _ => return Err(CKR_MECHANISM_INVALID),
        };
        let keep_message = matches!(collect, Collect::Hash(_)) && usable.iter().any(|(_, f)| *f == InputForm::Message);
        Ok(SignPlan {
            mechanism,
            key: key.algorithm,
            family,
            collect,
            keep_message,
            message: Vec::new(),
            message_too_long: false,
            usable,
        })
    }

    /// The mechanism this plan signs with.
    pub fn mechanism(&self) -> CK_MECHANISM_TYPE {
        self.mechanism
    }

    /// The signature's length.
    pub fn signature_len(&self) -> usize {
        signature_len(self.key)
    }

    /// Takes more input (`C_SignUpdate`, or the whole of `C_Sign`).
    pub fn update(&mut self, data: &[u8]) -> P11Result<()> {
        match &mut self.collect {
            Collect::Raw(buf) => {
                if buf.len() + data.len() > MAX_RAW_INPUT {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                buf.extend_from_slice(data);
            }
            Collect::Hash(h) => {
                h.update(data);
                if self.keep_message && !self.message_too_long {
                    if self.message.len() + data.len() > MAX_KEPT_MESSAGE {
                        self.message_too_long = true;
                        self.message = Vec::new();
                    } else {
                        self.message.extend_from_slice(data);
                    }
                }
            }
        }
        Ok(())
    }

    /// The contract mechanism, digest and (when the carrier wants it) message.
    pub fn finish(self) -> P11Result<Prepared> {
        let SignPlan { mechanism, key, family, collect, message, message_too_long, usable, .. } = self;
        let form_of = |kind: MechanismKind| usable.iter().find(|(k, _)| *k == kind).map(|(_, f)| *f);
        let (contract, digest) = match collect {
            Collect::Raw(input) => raw_input(mechanism, family, key, &input, &usable)?,
            Collect::Hash(h) => {
                let contract = match mechanism {
                    CKM_ECDSA_SHA256 => Mechanism::EcdsaSha256,
                    CKM_ECDSA_SHA384 => Mechanism::EcdsaSha384,
                    CKM_SHA256_RSA_PKCS => Mechanism::RsaPkcs1Sha256,
                    CKM_SHA256_RSA_PKCS_PSS => Mechanism::RsaPssSha256,
                    m if let Some(hash) = hashed_rsa_pkcs(m) => Mechanism::RsaPkcs1 { hash },
                    _ => Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() },
                };
                (contract, h.finalize())
            }
        };
        let wants_message = form_of(contract.kind()) == Some(InputForm::Message);
        let message = match (wants_message, message_too_long) {
            (false, _) => None,
            (true, false) if mechanism_is_hashed(mechanism) => Some(message),
            // A carrier that hashes itself cannot sign what it never sees.
            _ => return Err(CKR_DATA_LEN_RANGE),
        };
        Ok(Prepared { mechanism: contract, digest, message })
    }
}

fn hashed_rsa_pkcs(mechanism: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    HASHED_RSA_PKCS.iter().find(|(m, _)| *m == mechanism).map(|(_, h)| *h)
}

fn mechanism_is_hashed(mechanism: CK_MECHANISM_TYPE) -> bool {
    !matches!(mechanism, CKM_ECDSA | CKM_RSA_PKCS | CKM_RSA_PKCS_PSS | CKM_SM2_SIGN_NO_DER)
}

/// The contract mechanism and digest for a prehashed input.
fn raw_input(
    mechanism: CK_MECHANISM_TYPE,
    family: Family,
    key: KeyAlgorithm,
    input: &[u8],
    usable: &[(MechanismKind, InputForm)],
) -> P11Result<(Mechanism, Vec<u8>)> {
    let digest_ok = |kind: MechanismKind| usable.contains(&(kind, InputForm::Digest));
    match family {
        Family::Ecdsa => {
            ecdsa_input(key, input, digest_ok(MechanismKind::EcdsaSha256), digest_ok(MechanismKind::EcdsaSha384))
        }
        Family::RsaPkcs1 => {
            rsa_pkcs_input(input, digest_ok(MechanismKind::RsaPkcs1), digest_ok(MechanismKind::RsaPkcs1Sha256))
        }
        Family::RsaPss => {
            if input.len() != 32 {
                return Err(CKR_DATA_LEN_RANGE);
            }
            Ok((Mechanism::RsaPssSha256, input.to_vec()))
        }
        Family::Sm2 => {
            if input.len() != 32 || mechanism != CKM_SM2_SIGN_NO_DER {
                return Err(CKR_DATA_LEN_RANGE);
            }
            Ok((Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() }, input.to_vec()))
        }
    }
}

/// `CKM_ECDSA` signs whatever hash the program computed. ECDSA uses the hash's leftmost bits up
/// to the curve's size (SEC 1 §4.1.3, `bits2int`), so the input is cut or left-padded with zeros
/// to the field size (the same integer), then signed under the contract mechanism whose digest
/// has that size.
fn ecdsa_input(key: KeyAlgorithm, input: &[u8], sha256: bool, sha384: bool) -> P11Result<(Mechanism, Vec<u8>)> {
    if input.is_empty() {
        return Err(CKR_DATA_LEN_RANGE);
    }
    let field = key.ec_field_len().ok_or(CKR_KEY_TYPE_INCONSISTENT)?;
    let fit = |len: usize| -> Vec<u8> {
        if input.len() >= len {
            input[..len].to_vec()
        } else {
            let mut out = vec![0u8; len - input.len()];
            out.extend_from_slice(input);
            out
        }
    };
    match field {
        32 if sha256 => Ok((Mechanism::EcdsaSha256, fit(32))),
        48 if sha384 => Ok((Mechanism::EcdsaSha384, fit(48))),
        // A P-384 key whose carrier only signs 32-byte digests: exact for inputs up to 32 bytes.
        48 if sha256 && input.len() <= 32 => Ok((Mechanism::EcdsaSha256, fit(32))),
        _ => Err(CKR_DATA_LEN_RANGE),
    }
}

/// `CKM_RSA_PKCS` signs the DigestInfo the program built. It is parsed (DER; SHA-1 to SHA-512,
/// NULL or absent parameters) into the hash and digest the contract's [`Mechanism::RsaPkcs1`]
/// carries, or the SHA-256 mechanism for a carrier that offers only that. Anything else (raw
/// data, TLS 1.0's MD5‖SHA-1) is not a digest a carrier can be asked to sign: `CKR_DATA_INVALID`.
fn rsa_pkcs_input(input: &[u8], any_hash: bool, sha256: bool) -> P11Result<(Mechanism, Vec<u8>)> {
    let (hash, digest) = ukey_api::crypto::rsapad::parse_digest_info(input).map_err(|e| {
        log::debug!("CKM_RSA_PKCS input refused: {e}");
        CKR_DATA_INVALID
    })?;
    if any_hash {
        Ok((Mechanism::RsaPkcs1 { hash }, digest))
    } else if sha256 && hash == HashAlg::Sha256 {
        Ok((Mechanism::RsaPkcs1Sha256, digest))
    } else {
        log::debug!("CKM_RSA_PKCS over a {} DigestInfo: the carrier signs only SHA-256 ones", hash.as_str());
        Err(CKR_DATA_INVALID)
    }
}

/// `CK_RSA_PKCS_PSS_PARAMS` as the carrier contract can honour them: SHA-256, MGF1-SHA-256 and a
/// 32-byte salt.
fn check_pss_parameter(parameter: &[u8]) -> P11Result<()> {
    let word = std::mem::size_of::<CK_ULONG>();
    if parameter.len() != 3 * word {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    let field = |i: usize| -> CK_ULONG {
        let mut b = [0u8; std::mem::size_of::<CK_ULONG>()];
        b.copy_from_slice(&parameter[i * word..(i + 1) * word]);
        CK_ULONG::from_ne_bytes(b)
    };
    if field(0) == CKM_SHA256 && field(1) == CKG_MGF1_SHA256 && field(2) == 32 {
        Ok(())
    } else {
        Err(CKR_MECHANISM_PARAM_INVALID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ukey_api::ObjectId;

    fn caps(kinds: &[MechanismKind]) -> Capabilities {
        Capabilities { sign: kinds.iter().map(|k| (*k, InputForm::Digest)).collect(), ..Capabilities::default() }
    }

    fn key(alg: KeyAlgorithm, kinds: &[MechanismKind]) -> KeyObject {
        KeyObject {
            id: ObjectId(vec![1]),
            label: "k".into(),
            algorithm: alg,
            public_key: None,
            always_authenticate: false,
            mechanisms: kinds.to_vec(),
            certificate: None,
        }
    }

    fn pss(hash: CK_ULONG, mgf: CK_ULONG, salt: CK_ULONG) -> Vec<u8> {
        [hash, mgf, salt].iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    #[test]
    fn ecdsa_input_is_fitted_to_the_curve() {
        let (m, d) = ecdsa_input(KeyAlgorithm::P256, &[7u8; 64], true, true).unwrap();
        assert_eq!((m, d), (Mechanism::EcdsaSha256, vec![7u8; 32]));
        let (m, d) = ecdsa_input(KeyAlgorithm::P256, &[7u8; 20], true, false).unwrap();
        assert_eq!(m, Mechanism::EcdsaSha256);
        assert_eq!(&d[..12], &[0u8; 12]);
        let (m, d) = ecdsa_input(KeyAlgorithm::P384, &[7u8; 32], false, true).unwrap();
        assert_eq!((m, d.len()), (Mechanism::EcdsaSha384, 48));
        assert_eq!(ecdsa_input(KeyAlgorithm::P384, &[7u8; 48], true, false), Err(CKR_DATA_LEN_RANGE));
        assert_eq!(ecdsa_input(KeyAlgorithm::P256, &[], true, true), Err(CKR_DATA_LEN_RANGE));
    }

    #[test]
    fn pss_parameters_are_checked() {
        assert_eq!(check_pss_parameter(&pss(CKM_SHA256, CKG_MGF1_SHA256, 32)), Ok(()));
        assert_eq!(check_pss_parameter(&pss(CKM_SHA384, CKG_MGF1_SHA384, 48)), Err(CKR_MECHANISM_PARAM_INVALID));
        assert_eq!(check_pss_parameter(&pss(CKM_SHA256, CKG_MGF1_SHA256, 20)), Err(CKR_MECHANISM_PARAM_INVALID));
        assert_eq!(check_pss_parameter(&[]), Err(CKR_MECHANISM_PARAM_INVALID));
    }

    #[test]
    fn hashed_mechanisms_hash_and_raw_ones_check_their_input() {
        let c = caps(&[MechanismKind::RsaPkcs1Sha256]);
        let k = key(KeyAlgorithm::Rsa { bits: 2048 }, &[MechanismKind::RsaPkcs1Sha256]);
        let mut plan = SignPlan::new(CKM_SHA256_RSA_PKCS, &[], &k, None, &c).unwrap();
        plan.update(b"ab").unwrap();
        plan.update(b"c").unwrap();
        let p = plan.finish().unwrap();
        assert_eq!(p.mechanism, Mechanism::RsaPkcs1Sha256);
        assert_eq!(p.digest, HashAlg::Sha256.digest(b"abc"));
        assert_eq!(p.message, None);

        let info = ukey_api::crypto::rsapad::digest_info(HashAlg::Sha256, &p.digest).unwrap();
        let mut plan = SignPlan::new(CKM_RSA_PKCS, &[], &k, None, &c).unwrap();
        plan.update(&info).unwrap();
        assert_eq!(plan.finish().unwrap().digest, p.digest);

        let mut plan = SignPlan::new(CKM_RSA_PKCS, &[], &k, None, &c).unwrap();
        plan.update(b"not a digest info").unwrap();
        assert_eq!(plan.finish(), Err(CKR_DATA_INVALID));
    }

    #[test]
    fn rsa_pkcs_takes_any_sha_digest_info() {
        let c = caps(&[MechanismKind::RsaPkcs1Sha256, MechanismKind::RsaPkcs1]);
        let k = key(KeyAlgorithm::Rsa { bits: 2048 }, &[MechanismKind::RsaPkcs1Sha256, MechanismKind::RsaPkcs1]);
        for hash in [HashAlg::Sha1, HashAlg::Sha224, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            let digest = hash.digest(b"abc");
            let info = ukey_api::crypto::rsapad::digest_info(hash, &digest).unwrap();
            let mut plan = SignPlan::new(CKM_RSA_PKCS, &[], &k, None, &c).unwrap();
            plan.update(&info).unwrap();
            assert_eq!(plan.finish().unwrap().mechanism, Mechanism::RsaPkcs1 { hash });
        }
        let mut plan = SignPlan::new(CKM_SHA1_RSA_PKCS, &[], &k, None, &c).unwrap();
        plan.update(b"abc").unwrap();
        let p = plan.finish().unwrap();
        assert_eq!(
            (p.mechanism, p.digest),
            (Mechanism::RsaPkcs1 { hash: HashAlg::Sha1 }, HashAlg::Sha1.digest(b"abc"))
        );
        assert!(offered(&c).contains(&CKM_SHA512_RSA_PKCS));

        // A carrier with only the SHA-256 mechanism: SHA-256 DigestInfos only.
        let only256 = caps(&[MechanismKind::RsaPkcs1Sha256]);
        let k256 = key(KeyAlgorithm::Rsa { bits: 2048 }, &[MechanismKind::RsaPkcs1Sha256]);
        let sha1 = ukey_api::crypto::rsapad::digest_info(HashAlg::Sha1, &[1u8; 20]).unwrap();
        let mut plan = SignPlan::new(CKM_RSA_PKCS, &[], &k256, None, &only256).unwrap();
        plan.update(&sha1).unwrap();
        assert_eq!(plan.finish(), Err(CKR_DATA_INVALID));
        assert_eq!(SignPlan::new(CKM_SHA1_RSA_PKCS, &[], &k256, None, &only256).err(), Some(CKR_MECHANISM_INVALID));
    }

    #[test]
    fn init_refuses_what_the_key_cannot_do() {
        let c = caps(&[MechanismKind::EcdsaSha256, MechanismKind::RsaPkcs1Sha256]);
        let ec = key(KeyAlgorithm::P256, &[MechanismKind::EcdsaSha256]);
        assert_eq!(SignPlan::new(CKM_SHA256_RSA_PKCS, &[], &ec, None, &c).err(), Some(CKR_KEY_TYPE_INCONSISTENT));
        assert_eq!(SignPlan::new(CKM_ECDSA_SHA384, &[], &ec, None, &c).err(), Some(CKR_MECHANISM_INVALID));
        assert_eq!(SignPlan::new(CKM_ECDSA, &[1], &ec, None, &c).err(), Some(CKR_MECHANISM_PARAM_INVALID));
        assert_eq!(SignPlan::new(CKM_MD5, &[], &ec, None, &c).err(), Some(CKR_MECHANISM_INVALID));
        assert_eq!(offered(&c), vec![CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS, CKM_ECDSA, CKM_ECDSA_SHA256]);
    }
}
