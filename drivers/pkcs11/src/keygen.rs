//! Key-pair generation on the token: EC P-256/P-384, RSA 2048/3072/4096, and SM2 where the
//! module's vendor profile offers it.
//!
//! The private key is created sensitive and never extractable, with the label and a `CKA_ID`
//! that the certificate will carry later. When the caller names no id, the key gets the first
//! 20 bytes of SHA-256 over its public key (points and moduli are unique, so ids are too), set
//! after generation because the public key is only known then.

use cryptoki::mechanism::Mechanism as CkMechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use log::debug;
use sha2::{Digest, Sha256};
use ukey_api::{Credential, Error, KeyAlgorithm, KeyGenRequest, KeyObject, ObjectId, Result};

use crate::errors;
use crate::objects::{self, KeyFacts};
use crate::pending;
use crate::pubkey;
use crate::session::Tx;
use crate::sign::Offered;

/// RSA public exponent 65537.
const F4: [u8; 3] = [0x01, 0x00, 0x01];

/// Generates the key pair `request` asks for; the caller has logged the user in with `auth`
/// (needed again to clean up in a fresh session when the token fails half-way).
///
/// Atomic from the holder's view ([`pending`]): on any failure after the generation began, what
/// the token made is removed before the error is returned, or, when the token is gone, on the next
/// generation with the same label.
pub fn generate(tx: &mut Tx<'_>, request: &KeyGenRequest, auth: &Credential) -> Result<KeyObject> {
    let offered = tx.offered_with_keygen()?;
    let algorithm = request.algorithm;
    let can = offered.generate();
    if !can.contains(&algorithm) {
        let names: Vec<String> = can.iter().map(|a| a.name()).collect();
        return Err(Error::NotSupported(format!(
            "this token cannot generate {algorithm} keys; it can generate: {}",
            if names.is_empty() { "none".into() } else { names.join(", ") }
        )));
    }
    let label = request.label.trim();
    if label.is_empty() {
        return Err(Error::InvalidInput("a new key needs a label".into()));
    }
    pending::clear_interrupted(tx, label)?;
    refuse_clash(tx, label, request.id.as_ref())?;
    let id = match &request.id {
        Some(id) if !id.0.is_empty() => id.0.clone(),
        _ => temporary_id(tx)?,
    };
    pending::begin(tx, label, &id)?;
    let made = make_pair(tx, request, label, id, &offered).and_then(|key| pending::finish(tx, label).map(|()| key));
    if made.is_err() {
        pending::undo(tx, auth, label);
    }
    made
}

/// Generates the pair and reads back its public key; the id is settled from it when the caller
/// named none.
fn make_pair(
    tx: &mut Tx<'_>,
    request: &KeyGenRequest,
    label: &str,
    id: Vec<u8>,
    offered: &Offered,
) -> Result<KeyObject> {
    let algorithm = request.algorithm;
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let during = format!("generating a {algorithm} key");
    let (public_handle, private_handle) = match algorithm {
        KeyAlgorithm::Rsa { bits } => {
            public.push(Attribute::ModulusBits(u64::from(bits).into()));
            public.push(Attribute::PublicExponent(F4.to_vec()));
            standard(tx, &CkMechanism::RsaPkcsKeyPairGen, &public, &private, &during)?
        }
        KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
            public.push(Attribute::EcParams(pubkey::ec_params(algorithm)?));
            standard(tx, &CkMechanism::EccKeyPairGen, &public, &private, &during)?
        }
        KeyAlgorithm::Sm2 => {
            let profile = offered.sm2().cloned().ok_or_else(|| Error::NotSupported("no SM2 on this token".into()))?;
            let keygen = profile
                .keygen_mechanism
                .ok_or_else(|| Error::NotSupported(format!("profile {} names no SM2 key generation", profile.name)))?;
            public.push(Attribute::EcParams(pubkey::ec_params(KeyAlgorithm::Sm2)?));
            if let Some(key_type) = profile.key_type {
                public.push(objects::key_type_attribute(key_type));
                private.push(objects::key_type_attribute(key_type));
            }
            let raw = tx.token().module().raw().map_err(Error::Device)?;
            let result = raw.generate_key_pair(tx.session()?, keygen, &public, &private);
            result.map_err(|e| tx.fail(e, &during))?
        }
    };
    let facts = public_facts(tx, public_handle, private_handle)?;
    let id = if request.id.as_ref().is_some_and(|i| !i.0.is_empty()) {
        id
    } else {
        settle_id(tx, &facts, public_handle, private_handle, &id)?
    };
    Ok(KeyObject {
        id: ObjectId(id),
        label: label.to_string(),
        algorithm,
        public_key: facts.spki.clone(),
        always_authenticate: false,
        mechanisms: offered.mechanisms_for(algorithm),
        certificate: None,
    })
}

fn standard(
    tx: &mut Tx<'_>,
    mechanism: &CkMechanism,
    public: &[Attribute],
    private: &[Attribute],
    during: &str,
) -> Result<(ObjectHandle, ObjectHandle)> {
    let result = tx.session()?.generate_key_pair(mechanism, public, private);
    result.map_err(|e| tx.fail(e, during))
}

/// Refuses a label or id that would make lookups ambiguous.
fn refuse_clash(tx: &mut Tx<'_>, label: &str, id: Option<&ObjectId>) -> Result<()> {
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
        let by_label = objects::find(
            tx,
            &[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())],
            "checking the new key's label",
        )?;
        if !by_label.is_empty() {
            if let Some(half) = pending::lone_half(tx, label)? {
                return Err(Error::InvalidInput(half));
            }
            return Err(Error::InvalidInput(format!(
                "a key labelled `{label}` already exists on this token; choose another label or delete that key"
            )));
        }
        if let Some(id) = id.filter(|i| !i.0.is_empty()) {
            let by_id = objects::find(
                tx,
                &[Attribute::Class(class), Attribute::Id(id.0.clone())],
                "checking the new key's id",
            )?;
            if !by_id.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "a key with id {id} already exists on this token; choose another id or delete that key"
                )));
            }
        }
    }
    Ok(())
}

/// A random id for the moment between generation and [`settle_id`].
fn temporary_id(tx: &mut Tx<'_>) -> Result<Vec<u8>> {
    match tx.session()?.generate_random_vec(20) {
        Ok(v) => Ok(v),
        Err(e) => {
            debug!("C_GenerateRandom: {e}; using a time-based temporary id");
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            Ok(Sha256::digest(format!("{nanos}:{}", std::process::id())).to_vec()[..20].to_vec())
        }
    }
}

/// The new key's public attributes: from the public object, else from the private one.
fn public_facts(tx: &mut Tx<'_>, public: ObjectHandle, private: ObjectHandle) -> Result<KeyFacts> {
    for handle in [public, private] {
        if let Ok(facts) = objects::read_key(tx, handle)?
            && facts.spki.is_some()
        {
            return Ok(facts);
        }
    }
    Err(Error::Device("the token generated the key but shows no public key for it".into()))
}

/// Replaces the temporary id by one derived from the public key, on both halves. A token that
/// refuses to change `CKA_ID` keeps the temporary id, which is just as unique; the two halves
/// always end on one id (read back after a refusal, since a failed call may still have changed
/// one of them). A removed token fails the generation (the caller removes the pair).
fn settle_id(
    tx: &mut Tx<'_>,
    facts: &KeyFacts,
    public: ObjectHandle,
    private: ObjectHandle,
    temporary: &[u8],
) -> Result<Vec<u8>> {
    let Some(material) = facts.point.clone().or_else(|| facts.spki.clone()) else {
        return Ok(temporary.to_vec());
    };
    let id = Sha256::digest(&material)[..20].to_vec();
    let mut refused = None;
    for handle in [private, public] {
        let updated = tx.session()?.update_attributes(handle, &[Attribute::Id(id.clone())]);
        if let Err(e) = updated {
            refused = Some(e);
            break;
        }
    }
    let Some(e) = refused else { return Ok(id) };
    if errors::is_removal(&e) || errors::is_stuck_session(&e) {
        return Err(tx.fail(e, "setting the new key's id"));
    }
    debug!("cannot set CKA_ID on the new key pair: {e}; keeping the generated id");
    let now = (pending::id_of(tx, private)?, pending::id_of(tx, public)?);
    if let (Some(a), Some(b)) = &now
        && a == b
    {
        return Ok(a.clone());
    }
    for handle in [private, public] {
        let restored = tx.session()?.update_attributes(handle, &[Attribute::Id(temporary.to_vec())]);
        restored.map_err(|e| tx.fail(e, "putting the new key pair back on one id"))?;
    }
    Ok(temporary.to_vec())
}
