//! Object management: `C_FindObjectsInit`, `C_FindObjects`, `C_FindObjectsFinal`,
//! `C_GetAttributeValue`.
//!
//! Private objects (private keys) are found only after login. Attribute reads follow PKCS#11
//! §5.7 exactly: every attribute of the template is answered, a length query (NULL value) gets
//! the length, an attribute the object does not have gets `CK_UNAVAILABLE_INFORMATION` and
//! `CKR_ATTRIBUTE_TYPE_INVALID`, a secret one `CKR_ATTRIBUTE_SENSITIVE`, a short buffer
//! `CKR_BUFFER_TOO_SMALL`.

use cryptoki_sys::*;

use crate::module;
use crate::objects::Attr;
use crate::rv::P11Result;

/// `C_FindObjectsInit` with the template's `(type, value)` pairs.
pub fn find_init(session: CK_SESSION_HANDLE, template: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>) -> P11Result<()> {
    let m = module::current()?;
    let (slot, logged_in) = {
        let inner = m.lock();
        let s = inner.session(session)?;
        if s.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        (s.slot, inner.logged_in(s.slot))
    };
    let objects = m.objects(slot)?;
    let found: Vec<CK_OBJECT_HANDLE> =
        objects.iter().filter(|(_, o)| (!o.private || logged_in) && o.matches(&template)).map(|(h, _)| *h).collect();
    log::debug!(
        "session {session}: search by attributes {:x?} found {} objects",
        template.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        found.len()
    );
    let mut inner = m.lock();
    let s = inner.session_mut(session)?;
    if s.find.is_some() {
        return Err(CKR_OPERATION_ACTIVE);
    }
    // Handed out front to back.
    s.find = Some(found.into_iter().rev().collect());
    Ok(())
}

/// `C_FindObjects`: up to `max` more handles.
pub fn find_next(session: CK_SESSION_HANDLE, max: usize) -> P11Result<Vec<CK_OBJECT_HANDLE>> {
    let m = module::current()?;
    let mut inner = m.lock();
    let pending = inner.session_mut(session)?.find.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
    let mut out = Vec::new();
    while out.len() < max {
        match pending.pop() {
            Some(h) => out.push(h),
            None => break,
        }
    }
    Ok(out)
}

/// `C_FindObjectsFinal`.
pub fn find_final(session: CK_SESSION_HANDLE) -> P11Result<()> {
    let m = module::current()?;
    let mut inner = m.lock();
    inner.session_mut(session)?.find.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
    Ok(())
}

/// One attribute of a `C_GetAttributeValue` template: its type and the room the program gave
/// (`None` for a length query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeRequest {
    /// Attribute type.
    pub kind: CK_ATTRIBUTE_TYPE,
    /// `ulValueLen` when `pValue` is not NULL.
    pub room: Option<usize>,
}

/// The answer for one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeAnswer {
    /// `ulValueLen = CK_UNAVAILABLE_INFORMATION` (missing, secret, or buffer too small).
    Unavailable,
    /// The length only (a length query).
    Length(usize),
    /// The value, which fits the room given.
    Value(Vec<u8>),
}

/// `C_GetAttributeValue`: one answer per request, and the call's return value.
pub fn get_attributes(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    requests: &[AttributeRequest],
) -> P11Result<(Vec<AttributeAnswer>, CK_RV)> {
    let m = module::current()?;
    let object = m.object(session, object)?;
    let mut rv = CKR_OK;
    let answers = requests
        .iter()
        .map(|r| match object.attribute(r.kind) {
            None => {
                rv = CKR_ATTRIBUTE_TYPE_INVALID;
                AttributeAnswer::Unavailable
            }
            Some(Attr::Sensitive) => {
                rv = CKR_ATTRIBUTE_SENSITIVE;
                AttributeAnswer::Unavailable
            }
            Some(Attr::Value(v)) => match r.room {
                None => AttributeAnswer::Length(v.len()),
                Some(room) if room >= v.len() => AttributeAnswer::Value(v.clone()),
                Some(_) => {
                    rv = CKR_BUFFER_TOO_SMALL;
                    AttributeAnswer::Unavailable
                }
            },
        })
        .collect();
    Ok((answers, rv))
}
