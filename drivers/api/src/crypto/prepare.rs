//! What the core hands a carrier to sign: the mechanism's digest (SM2: `SM3(Z ‖ M)`), plus the
//! message when it is known.
//!
//! Every driver receives a [`SignInput`] prepared here, so hashing and the SM2 Z value are done
//! the same way for every carrier, and a prehashed input is checked once, with a clear error.

use crate::crypto::hash::Hasher;
use crate::crypto::keyinfo;
use crate::crypto::sm2z;
use crate::error::{Error, Result};
use crate::mechanism::{InputForm, Mechanism, SignInput};

/// What the caller has to sign.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SignData<'a> {
    /// The message; the core hashes it (for SM2 over `Z ‖ M`).
    Message(&'a [u8]),
    /// A digest the caller already computed (`--prehashed`): the mechanism's hash of the message,
    /// for SM2 `e = SM3(Z ‖ M)` with the signer's key and id.
    Digest(&'a [u8]),
}

impl std::fmt::Debug for SignData<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignData::Message(m) => write!(f, "Message({} bytes)", m.len()),
            SignData::Digest(d) => write!(f, "Digest({})", hex::encode(d)),
        }
    }
}

/// Prepares the input for `mechanism` with the signing key's public key (DER SPKI).
///
/// The public key is required for SM2 (Z depends on it). For other mechanisms it is optional and,
/// when given, checked to be a key that can make this signature. A digest must have the hash's
/// length.
pub fn prepare_input(mechanism: &Mechanism, public_key_spki: Option<&[u8]>, data: SignData<'_>) -> Result<SignInput> {
    if let Some(spki) = public_key_spki {
        let alg = keyinfo::spki_algorithm(spki)?;
        mechanism.check_key(alg)?;
    }
    match data {
        SignData::Digest(digest) => {
            let expected = mechanism.hash().output_len();
            if digest.len() != expected {
                let what = match mechanism {
                    Mechanism::Sm2Sm3 { .. } => "SM3(Z ‖ M) with the signer's key and id",
                    _ => mechanism.hash().as_str(),
                };
                return Err(Error::InvalidInput(format!(
                    "a prehashed input for {mechanism} must be the {expected}-byte {what} digest; got {} bytes",
                    digest.len()
                )));
            }
            Ok(SignInput { digest: digest.to_vec(), message: None })
        }
        SignData::Message(message) => {
            let mut hasher = message_hasher(mechanism, public_key_spki)?;
            hasher.update(message);
            Ok(SignInput { digest: hasher.finalize(), message: Some(message.to_vec()) })
        }
    }
}

/// A hasher already primed for `mechanism` (for SM2 it has absorbed Z), so a large message can
/// be streamed; finish with [`input_from_digest`].
pub fn message_hasher(mechanism: &Mechanism, public_key_spki: Option<&[u8]>) -> Result<Hasher> {
    let mut hasher = Hasher::new(mechanism.hash());
    if let Mechanism::Sm2Sm3 { user_id } = mechanism {
        let spki = public_key_spki.ok_or_else(|| {
            Error::InvalidInput(
                "SM2 signing needs the signer's public key to compute Z; the carrier did not provide it (import the certificate first)"
                    .into(),
            )
        })?;
        hasher.update(&sm2z::sm2_z(spki, user_id)?);
    }
    Ok(hasher)
}

/// Wraps a digest from [`message_hasher`] (no message kept: it was streamed).
pub fn input_from_digest(mechanism: &Mechanism, digest: Vec<u8>) -> Result<SignInput> {
    prepare_input(mechanism, None, SignData::Digest(&digest))
}

/// Refuses an input a carrier cannot use: a carrier that wants the message cannot sign a
/// prehashed input.
pub fn check_input_form(input: &SignInput, form: InputForm) -> Result<()> {
    if form == InputForm::Message && input.message.is_none() {
        return Err(Error::NotSupported(
            "this carrier hashes the message itself and cannot sign a prehashed digest; give the message instead"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::DEFAULT_SM2_ID;

    const ANNEX_A_POINT: &str = "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020\
                                 ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13";

    fn annex_a_spki() -> Vec<u8> {
        use sm2::pkcs8::EncodePublicKey;
        let point = hex::decode(ANNEX_A_POINT).unwrap();
        sm2::PublicKey::from_sec1_bytes(&point).unwrap().to_public_key_der().unwrap().as_bytes().to_vec()
    }

    #[test]
    fn sm2_message_gives_annex_a_e() {
        let mech = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
        let spki = annex_a_spki();
        let input = prepare_input(&mech, Some(&spki), SignData::Message(b"message digest")).unwrap();
        assert_eq!(hex::encode(&input.digest), "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640");
        assert_eq!(input.message.as_deref(), Some(&b"message digest"[..]));
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mech = Mechanism::Sm2Sm3 { user_id: b"alice".to_vec() };
        let spki = annex_a_spki();
        let mut h = message_hasher(&mech, Some(&spki)).unwrap();
        h.update(b"message ");
        h.update(b"digest");
        let streamed = input_from_digest(&mech, h.finalize()).unwrap();
        let whole = prepare_input(&mech, Some(&spki), SignData::Message(b"message digest")).unwrap();
        assert_eq!(streamed.digest, whole.digest);
        assert!(streamed.message.is_none());
    }

    #[test]
    fn prehash_length_is_checked() {
        let err = prepare_input(&Mechanism::EcdsaSha384, None, SignData::Digest(&[0u8; 32])).unwrap_err();
        assert!(err.to_string().contains("48-byte sha384"), "{err}");
        let ok = prepare_input(&Mechanism::EcdsaSha256, None, SignData::Digest(&[1u8; 32])).unwrap();
        assert_eq!(ok.digest, vec![1u8; 32]);
        assert!(ok.message.is_none());
        let sm2 = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
        let err = prepare_input(&sm2, None, SignData::Digest(&[0u8; 20])).unwrap_err();
        assert!(err.to_string().contains("SM3(Z ‖ M)"), "{err}");
    }

    #[test]
    fn sm2_without_key_or_with_wrong_key_is_refused() {
        let sm2 = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
        let err = prepare_input(&sm2, None, SignData::Message(b"m")).unwrap_err();
        assert!(err.to_string().contains("public key"), "{err}");
        let spki = annex_a_spki();
        let err = prepare_input(&Mechanism::EcdsaSha256, Some(&spki), SignData::Message(b"m")).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "{err}");
    }

    #[test]
    fn message_form_needs_the_message() {
        let input = prepare_input(&Mechanism::EcdsaSha256, None, SignData::Digest(&[1u8; 32])).unwrap();
        assert!(check_input_form(&input, InputForm::Digest).is_ok());
        assert!(check_input_form(&input, InputForm::Message).is_err());
    }
}
