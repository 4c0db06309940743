//! Key generation as one step from the holder's view: it delivers a complete key pair or leaves
//! nothing behind, even when the token fails or goes away half-way.
//!
//! A token can fail after `C_GenerateKeyPair` made the objects (reading the public key, settling
//! the id), or fail inside `C_GenerateKeyPair` after making one or both halves; a removed token
//! cannot even be asked to remove them. So before generating, ukey writes a note on the token: a
//! data object with `CKA_APPLICATION` = [`APPLICATION`] and the new key's label. The note is
//! removed only once the pair is complete. Any failure in between removes every key with that
//! label and then the note, in a fresh session if the old one ended ([`undo`]). If that is
//! impossible (the token is gone), the note stays, and the next generation with that label finds
//! it and removes the leftovers first ([`clear_interrupted`]).
//!
//! Why by label: the note is written only after checking that no key carries the label, so while
//! it exists every key with that label comes from the interrupted generation (its id may be the
//! temporary one or the settled one, so the id cannot be the criterion). A leftover that has since
//! been given a certificate is kept: someone has started to use it.
//!
//! Without a note (a token that refuses data objects, a pair made by another program or an older
//! ukey) a lone half — a private key with neither a public key nor a certificate of its id, or a
//! public key with neither a private key nor a certificate — is reported for what it is, never
//! removed: ukey cannot prove it made it ([`lone_half`]).

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use log::{debug, warn};
use ukey_api::{Credential, Error, ObjectId, Result};

use crate::objects;
use crate::session::Tx;

/// `CKA_APPLICATION` of the note that a key generation is in progress.
pub const APPLICATION: &str = "ukey: key generation in progress";

const KEY_CLASSES: [ObjectClass; 2] = [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY];

/// Writes the note for a generation of a key labelled `label` with (temporary) id `id`. A token
/// that refuses data objects generates without one (logged); a removed token fails here, before
/// anything was made.
pub fn begin(tx: &mut Tx<'_>, label: &str, id: &[u8]) -> Result<()> {
    let template = [
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Application(APPLICATION.as_bytes().to_vec()),
        Attribute::Value(id.to_vec()),
    ];
    let created = tx.session()?.create_object(&template);
    match created {
        Ok(_) => Ok(()),
        Err(e) if crate::errors::is_removal(&e) || crate::errors::is_stuck_session(&e) => {
            Err(tx.fail(e, "noting the key generation on the token"))
        }
        Err(e) => {
            debug!("the token keeps no note of the key generation ({e}); generating without one");
            Ok(())
        }
    }
}

/// The pair is complete: removes the note. Found by label, not by the handle `begin` got, since a
/// note may exist although its creation reported a failure.
pub fn finish(tx: &mut Tx<'_>, label: &str) -> Result<()> {
    for handle in notes(tx, label)? {
        let destroyed = tx.session()?.destroy_object(handle);
        destroyed.map_err(|e| tx.fail(e, "completing the key generation"))?;
    }
    Ok(())
}

/// After a failed generation: removes every key labelled `label` and the note, in a fresh session
/// when the old one ended. Best effort: when the token is gone, the note stays for
/// [`clear_interrupted`] and a warning says so.
pub fn undo(tx: &mut Tx<'_>, auth: &Credential, label: &str) {
    const DURING: &str = "removing a half-made key pair";
    let mut outcome = if tx.session().is_ok() { remove_leftovers(tx, label) } else { Err(Error::TokenRemoved) };
    if outcome.is_err() {
        // The session ended, or is in a state ukey cannot trust: one more try on a fresh one.
        outcome = tx.reopen(auth, DURING).and_then(|()| remove_leftovers(tx, label));
    }
    match outcome {
        Ok(0) => {}
        Ok(n) => debug!("removed {n} object(s) of the failed generation of `{label}`"),
        Err(e) => warn!(
            "the key generation of `{label}` failed and what it made could not be removed ({e}); the next key \
             generation with this label on this token removes it"
        ),
    }
}

/// Before a generation: removes what an interrupted generation of a key labelled `label` left
/// (its note says so), unless a leftover has meanwhile been given a certificate.
pub fn clear_interrupted(tx: &mut Tx<'_>, label: &str) -> Result<()> {
    if notes(tx, label)?.is_empty() {
        return Ok(());
    }
    for handle in keys_labelled(tx, label)? {
        if let Some(id) = id_of(tx, handle)?
            && has(tx, ObjectClass::CERTIFICATE, &id)?
        {
            return Err(Error::InvalidInput(format!(
                "a key labelled `{label}` (id {}) was left by an interrupted key generation but has since been given \
                 a certificate, so ukey keeps it; choose another label, or delete that key and its certificate",
                ObjectId(id)
            )));
        }
    }
    let removed = remove_leftovers(tx, label)?;
    warn!("removed {removed} object(s) that an interrupted key generation of `{label}` left on the token");
    Ok(())
}

/// Describes the keys labelled `label` when they are only lone halves (see the module comment);
/// `None` when any of them is a complete key (paired, or with a certificate).
pub fn lone_half(tx: &mut Tx<'_>, label: &str) -> Result<Option<String>> {
    let mut lone = Vec::new();
    for (class, kind, partner, partner_kind, tool_type) in [
        (ObjectClass::PRIVATE_KEY, "private", ObjectClass::PUBLIC_KEY, "public", "privkey"),
        (ObjectClass::PUBLIC_KEY, "public", ObjectClass::PRIVATE_KEY, "private", "pubkey"),
    ] {
        for handle in find_labelled(tx, class, label)? {
            let id = id_of(tx, handle)?.unwrap_or_default();
            if has(tx, partner, &id)? || has(tx, ObjectClass::CERTIFICATE, &id)? {
                return Ok(None);
            }
            lone.push(format!(
                "a {kind} key labelled `{label}` (id {}) has no {partner_kind} key and no certificate; delete it \
                 (`pkcs11-tool --login --delete-object --type {tool_type} --label {label}`)",
                ObjectId(id)
            ));
        }
    }
    if lone.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "{}. This is a half-made key pair, most likely left by an interrupted key generation by another program; \
         ukey removes only what it can prove it made. Delete it and retry, or choose another label",
        lone.join("; ")
    )))
}

/// Removes the keys labelled `label`, then the note; returns how many objects went.
fn remove_leftovers(tx: &mut Tx<'_>, label: &str) -> Result<usize> {
    let mut handles = keys_labelled(tx, label)?;
    handles.extend(notes(tx, label)?);
    for handle in &handles {
        let destroyed = tx.session()?.destroy_object(*handle);
        destroyed.map_err(|e| tx.fail(e, "removing a half-made key pair"))?;
    }
    Ok(handles.len())
}

fn notes(tx: &mut Tx<'_>, label: &str) -> Result<Vec<ObjectHandle>> {
    objects::find(
        tx,
        &[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(APPLICATION.as_bytes().to_vec()),
        ],
        "looking for an interrupted key generation",
    )
}

fn keys_labelled(tx: &mut Tx<'_>, label: &str) -> Result<Vec<ObjectHandle>> {
    let mut handles = Vec::new();
    for class in KEY_CLASSES {
        handles.extend(find_labelled(tx, class, label)?);
    }
    Ok(handles)
}

fn find_labelled(tx: &mut Tx<'_>, class: ObjectClass, label: &str) -> Result<Vec<ObjectHandle>> {
    objects::find(
        tx,
        &[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())],
        "looking for keys by label",
    )
}

fn has(tx: &mut Tx<'_>, class: ObjectClass, id: &[u8]) -> Result<bool> {
    if id.is_empty() {
        return Ok(false);
    }
    let found = objects::find(tx, &[Attribute::Class(class), Attribute::Id(id.to_vec())], "pairing keys by id")?;
    Ok(!found.is_empty())
}

/// A key's `CKA_ID` (`None` when the object has none).
pub fn id_of(tx: &mut Tx<'_>, handle: ObjectHandle) -> Result<Option<Vec<u8>>> {
    match tx.session()?.get_attributes(handle, &[AttributeType::Id]) {
        Ok(attrs) => Ok(attrs.into_iter().find_map(|a| match a {
            Attribute::Id(id) => Some(id),
            _ => None,
        })),
        Err(e) => Err(tx.fail(e, "reading a key's id")),
    }
}
