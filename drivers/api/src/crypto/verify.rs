//! Signature verification for every mechanism ukey offers, against a DER SubjectPublicKeyInfo.
//!
//! Used by `ukey verify`, by tests that check what carriers return, and by web servers that
//! check an authentication token. EC and SM2 signatures are accepted raw (`r ‖ s`) or in DER.

use der::Decode;
use p256::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, Pss};
use sha2::Sha256;
use signature::hazmat::PrehashVerifier;
use spki::SubjectPublicKeyInfoRef;

use crate::crypto::keyinfo;
use crate::crypto::prepare::{SignData, prepare_input};
use crate::crypto::sigenc;
use crate::crypto::sm2z;
use crate::crypto::software::RSA_PSS_SALT_LEN;
use crate::error::{Error, Result};
use crate::mechanism::{KeyAlgorithm, Mechanism};

/// Which RSA-PSS salt lengths a verifier accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PssSaltLen {
    /// Whatever salt length the signature carries (recovered from the encoding), as OpenSSL's
    /// `rsa_pss_saltlen:auto` does.
    #[default]
    Auto,
    /// Exactly this many bytes (ukey signs with [`RSA_PSS_SALT_LEN`]).
    Exactly(usize),
}

/// Options that only some mechanisms use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// RSA-PSS salt length policy.
    pub pss_salt: PssSaltLen,
}

/// Verifies `signature` over `data` (a message, or the mechanism's digest of it) made with the
/// key `public_key_spki` and `mechanism` (SM2: with the id in the mechanism). EC/SM2 signatures
/// may be raw `r ‖ s` or DER.
pub fn verify_signature(
    public_key_spki: &[u8],
    mechanism: &Mechanism,
    data: SignData<'_>,
    signature: &[u8],
) -> Result<()> {
    verify_signature_with(public_key_spki, mechanism, data, signature, VerifyOptions::default())
}

/// [`verify_signature`] with explicit options.
pub fn verify_signature_with(
    public_key_spki: &[u8],
    mechanism: &Mechanism,
    data: SignData<'_>,
    signature: &[u8],
    options: VerifyOptions,
) -> Result<()> {
    let alg = keyinfo::spki_algorithm(public_key_spki)?;
    let input = prepare_input(mechanism, Some(public_key_spki), data)?;
    let digest = &input.digest;
    let ok = match alg.ec_field_len() {
        Some(n) => {
            let candidates = ec_signature_candidates(signature, n)?;
            let mut any = false;
            for raw in &candidates {
                if verify_ec_raw(alg, public_key_spki, digest, raw)? {
                    any = true;
                    break;
                }
            }
            any
        }
        None => verify_rsa(public_key_spki, mechanism, digest, signature, options)?,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Crypto(format!(
            "signature does not verify: it was not made by this {alg} key with {mechanism} over this {}{}",
            match data {
                SignData::Message(_) => "message",
                SignData::Digest(_) => "digest",
            },
            match mechanism {
                Mechanism::Sm2Sm3 { user_id } => {
                    format!(" (SM2 distinguishing id `{}`)", String::from_utf8_lossy(user_id))
                }
                _ => String::new(),
            }
        )))
    }
}

/// The raw forms a presented EC/SM2 signature may stand for: its DER decoding and, when it has
/// exactly the raw length, itself.
fn ec_signature_candidates(signature: &[u8], field_len: usize) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(2);
    if let Ok(raw) = sigenc::der_to_raw(signature, field_len) {
        out.push(raw);
    }
    if signature.len() == 2 * field_len {
        out.push(signature.to_vec());
    }
    if out.is_empty() {
        return Err(Error::InvalidInput(format!(
            "the signature is neither DER `SEQUENCE {{ r, s }}` nor a raw r ‖ s of {} bytes ({} bytes given)",
            2 * field_len,
            signature.len()
        )));
    }
    Ok(out)
}

/// `Ok(false)` when the signature does not verify; `Err` only for an unusable key.
fn verify_ec_raw(alg: KeyAlgorithm, spki: &[u8], digest: &[u8], raw: &[u8]) -> Result<bool> {
    let bad_key = |e: &dyn std::fmt::Display| Error::InvalidInput(format!("unusable {alg} public key: {e}"));
    Ok(match alg {
        KeyAlgorithm::Sm2 => {
            let point = sm2z::sm2_public_point(spki)?;
            let public = sm2::PublicKey::from_sec1_bytes(&point).map_err(|e| bad_key(&e))?;
            // The id only enters Z, which the digest already contains.
            let vk = sm2::dsa::VerifyingKey::new("", public).map_err(|e| bad_key(&e))?;
            match sm2::dsa::Signature::from_slice(raw) {
                Ok(sig) => vk.verify_prehash(digest, &sig).is_ok(),
                Err(_) => false,
            }
        }
        KeyAlgorithm::P256 => {
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(|e| bad_key(&e))?;
            match p256::ecdsa::Signature::from_slice(raw) {
                Ok(sig) => vk.verify_prehash(digest, &sig).is_ok(),
                Err(_) => false,
            }
        }
        KeyAlgorithm::P384 => {
            let vk = p384::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(|e| bad_key(&e))?;
            match p384::ecdsa::Signature::from_slice(raw) {
                Ok(sig) => vk.verify_prehash(digest, &sig).is_ok(),
                Err(_) => false,
            }
        }
        KeyAlgorithm::Rsa { .. } => false,
    })
}

fn verify_rsa(
    spki: &[u8],
    mechanism: &Mechanism,
    digest: &[u8],
    signature: &[u8],
    options: VerifyOptions,
) -> Result<bool> {
    let public = rsa::PublicKey::from_public_key_der(spki)
        .map_err(|e| Error::InvalidInput(format!("unusable RSA public key: {e}")))?;
    Ok(match mechanism {
        Mechanism::RsaPkcs1Sha256 => public.verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature).is_ok(),
        Mechanism::RsaPkcs1 { hash } => {
            let info = crate::crypto::rsapad::digest_info(*hash, digest)?;
            public.verify(Pkcs1v15Sign::new_unprefixed(), &info, signature).is_ok()
        }
        Mechanism::RsaPssSha256 => match options.pss_salt {
            PssSaltLen::Exactly(len) => public.verify(Pss::<Sha256>::new_with_salt(len), digest, signature).is_ok(),
            PssSaltLen::Auto => {
                let vk = rsa::pss::VerifyingKey::<Sha256>::new_with_auto_salt_len(public);
                match rsa::pss::Signature::try_from(signature) {
                    Ok(sig) => vk.verify_prehash(digest, &sig).is_ok(),
                    Err(_) => false,
                }
            }
        },
        _ => false,
    })
}

/// Reads a public key from what people have at hand: a certificate or a `PUBLIC KEY`, in PEM or
/// DER. Returns DER SubjectPublicKeyInfo.
pub fn public_key_from_pem_or_der(bytes: &[u8]) -> Result<Vec<u8>> {
    use crate::crypto::pem;
    if pem::is_pem(bytes) {
        for (label, der) in pem::pem_blocks(bytes)? {
            match label.as_str() {
                pem::PUBLIC_KEY => return spki_checked(&der),
                pem::CERTIFICATE => return Ok(crate::crypto::cert::parse_certificate(&der)?.public_key),
                _ => {}
            }
        }
        return Err(Error::InvalidInput(
            "the PEM input has no `PUBLIC KEY` or `CERTIFICATE` block (export one with `ukey pubkey` or `ukey certs`)"
                .into(),
        ));
    }
    if SubjectPublicKeyInfoRef::from_der(bytes).is_ok() {
        return spki_checked(bytes);
    }
    crate::crypto::cert::parse_certificate(bytes).map(|c| c.public_key).map_err(|_| {
        Error::InvalidInput("not a public key or certificate (PEM or DER SubjectPublicKeyInfo / X.509)".into())
    })
}

fn spki_checked(der: &[u8]) -> Result<Vec<u8>> {
    keyinfo::spki_algorithm(der)?;
    Ok(der.to_vec())
}

/// The salt length ukey's own RSA-PSS signatures use, as a verify option.
pub const UKEY_PSS_SALT: PssSaltLen = PssSaltLen::Exactly(RSA_PSS_SALT_LEN);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::software::SoftwareKey;
    use crate::mechanism::DEFAULT_SM2_ID;

    #[test]
    fn ec_round_trip_raw_and_der_and_tamper() {
        for (alg, mech) in [
            (KeyAlgorithm::Sm2, KeyAlgorithm::Sm2.default_mechanism()),
            (KeyAlgorithm::P256, Mechanism::EcdsaSha256),
            (KeyAlgorithm::P384, Mechanism::EcdsaSha384),
        ] {
            let key = SoftwareKey::generate(alg).unwrap();
            let raw = key.sign_message(&mech, b"payload").unwrap();
            let der = sigenc::raw_to_der(&raw, alg.ec_field_len().unwrap()).unwrap();
            let spki = key.public_key_spki();
            verify_signature(spki, &mech, SignData::Message(b"payload"), &raw).unwrap();
            verify_signature(spki, &mech, SignData::Message(b"payload"), &der).unwrap();
            let err = verify_signature(spki, &mech, SignData::Message(b"payloaD"), &der).unwrap_err();
            assert!(err.to_string().contains("signature does not verify"), "{err}");
            let mut flipped = raw.clone();
            flipped[5] ^= 0x40;
            assert!(verify_signature(spki, &mech, SignData::Message(b"payload"), &flipped).is_err());
            let digest = prepare_input(&mech, Some(spki), SignData::Message(b"payload")).unwrap().digest;
            verify_signature(spki, &mech, SignData::Digest(&digest), &raw).unwrap();
        }
    }

    #[test]
    fn sm2_id_matters() {
        let key = SoftwareKey::generate(KeyAlgorithm::Sm2).unwrap();
        let mech = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
        let sig = key.sign_message(&mech, b"m").unwrap();
        let other = Mechanism::Sm2Sm3 { user_id: Vec::new() };
        let err = verify_signature(key.public_key_spki(), &other, SignData::Message(b"m"), &sig).unwrap_err();
        assert!(err.to_string().contains("distinguishing id"), "{err}");
    }

    #[test]
    fn wrong_key_type_and_garbage_signature() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let err = verify_signature(key.public_key_spki(), &Mechanism::RsaPssSha256, SignData::Message(b"m"), &[0; 64])
            .unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "{err}");
        let err = verify_signature(key.public_key_spki(), &Mechanism::EcdsaSha256, SignData::Message(b"m"), &[1; 10])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }

    #[test]
    fn public_key_readers() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let spki = key.public_key_spki();
        assert_eq!(public_key_from_pem_or_der(spki).unwrap(), spki);
        let pem = der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, spki).unwrap();
        assert_eq!(public_key_from_pem_or_der(pem.as_bytes()).unwrap(), spki);
        assert!(public_key_from_pem_or_der(b"hello").is_err());
    }
}
