//! Signing: `C_SignInit`, `C_Sign`, `C_SignUpdate`, `C_SignFinal`.
//!
//! The module collects (and, for mechanisms with a hash, hashes) the input, then asks the agent's
//! `carrier.sign`, which passes the custody policy, records the use in the audit log and signs on
//! the carrier. Without a login (the agent PIN mode, [`crate::pin_mode`]) the agent asks the
//! holder for the PIN of that signature. A length query or a short buffer is answered from the key's size without asking
//! anything, and leaves the operation active as PKCS#11 requires; every other end of `C_Sign` /
//! `C_SignFinal` ends it.

use cryptoki_sys::*;

use ukey_api::{KeyAlgorithm, KeyObject, Pin};

use crate::agent::SignRequest;
use crate::mechanisms::SignPlan;
use crate::module;
use crate::rv::{self, Context, P11Result};

/// One signing operation in a session.
pub struct SignOperation {
    plan: SignPlan,
    slot: CK_SLOT_ID,
    token: String,
    key: KeyObject,
    /// `C_Login(CKU_CONTEXT_SPECIFIC)` was called for this operation.
    context_login: bool,
    /// The PIN given with that login.
    context_pin: Option<Pin>,
}

impl SignOperation {
    /// Records a context-specific login for this operation.
    pub fn authenticate(&mut self, pin: Option<Pin>) {
        self.context_login = true;
        self.context_pin = pin;
    }
}

/// What `C_Sign` / `C_SignFinal` hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutput {
    /// The signature's length (a length query, or the buffer was too small: the FFI layer tells
    /// them apart by whether room was given).
    Length(usize),
    /// The signature.
    Signature(Vec<u8>),
}

/// `C_SignInit`.
pub fn init(
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    parameter: &[u8],
    key: CK_OBJECT_HANDLE,
) -> P11Result<()> {
    let m = module::current()?;
    let (slot, token, logged_in) = {
        let inner = m.lock();
        let s = inner.session(session)?;
        if s.sign.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let slot = inner.slots.present(s.slot)?;
        (s.slot, slot.token(), slot.login.is_some())
    };
    if !logged_in && m.pin_mode.login_required() {
        return Err(CKR_USER_NOT_LOGGED_IN);
    }
    let object = m.object(session, key).map_err(|_| CKR_KEY_HANDLE_INVALID)?;
    let key_object = object.key.clone().ok_or(CKR_KEY_FUNCTION_NOT_PERMITTED)?;
    let caps = m.capabilities(slot)?;
    let plan = SignPlan::new(mechanism, parameter, &key_object, object.spki.as_deref(), &caps)?;
    let mut inner = m.lock();
    let s = inner.session_mut(session)?;
    if s.sign.is_some() {
        return Err(CKR_OPERATION_ACTIVE);
    }
    log::debug!("session {session}: signing with mechanism {mechanism:#x} and key {}", key_object.id);
    s.sign = Some(SignOperation { plan, slot, token, key: key_object, context_login: false, context_pin: None });
    Ok(())
}

/// `C_SignUpdate`; an error ends the operation.
pub fn update(session: CK_SESSION_HANDLE, data: &[u8]) -> P11Result<()> {
    let m = module::current()?;
    let mut inner = m.lock();
    let s = inner.session_mut(session)?;
    let op = s.sign.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
    if let Err(rv) = op.plan.update(data) {
        s.sign = None;
        return Err(rv);
    }
    Ok(())
}

/// `C_Sign`: `room` is `None` for a length query.
pub fn sign(session: CK_SESSION_HANDLE, data: &[u8], room: Option<usize>) -> P11Result<SignOutput> {
    finish(session, Some(data), room)
}

/// `C_SignFinal`: `room` is `None` for a length query.
pub fn sign_final(session: CK_SESSION_HANDLE, room: Option<usize>) -> P11Result<SignOutput> {
    finish(session, None, room)
}

fn finish(session: CK_SESSION_HANDLE, data: Option<&[u8]>, room: Option<usize>) -> P11Result<SignOutput> {
    let m = module::current()?;
    let (mut op, login) = {
        let mut inner = m.lock();
        let s = inner.session_mut(session)?;
        let op = s.sign.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let len = op.plan.signature_len();
        if room.is_none_or(|r| r < len) {
            return Ok(SignOutput::Length(len));
        }
        let Some(op) = s.sign.take() else { return Err(CKR_OPERATION_NOT_INITIALIZED) };
        let login = inner.slots.get(op.slot).ok().and_then(|sl| sl.login);
        (op, login)
    };
    if let Some(d) = data {
        op.plan.update(d)?;
    }
    let expected = op.plan.signature_len();
    let mechanism = op.plan.mechanism();
    let prepared = op.plan.finish()?;
    // Keys that always authenticate, and operations with their own login, are signed with that
    // PIN or a fresh dialog; everything else rides on the program's login. In the agent PIN mode
    // a program that did not log in gets the agent's dialog for this signature.
    let own_login = op.key.always_authenticate || op.context_login;
    let login = match (own_login, login) {
        (true, _) => None,
        (false, Some(generation)) => Some(generation),
        (false, None) if !m.pin_mode.login_required() => None,
        (false, None) => return Err(CKR_USER_NOT_LOGGED_IN),
    };
    let request = SignRequest {
        token: &op.token,
        key: &op.key.id,
        mechanism: &prepared.mechanism,
        digest: &prepared.digest,
        message: prepared.message.as_deref(),
        pin: op.context_pin.as_ref(),
        login,
    };
    let signature = match m.agent.sign(&request) {
        Ok(s) => s,
        Err(e) => {
            log::debug!("session {session}: signing with {mechanism:#x} failed: {e}");
            let rv = rv::for_link_error(&e, Context::Sign);
            if rv == CKR_USER_NOT_LOGGED_IN
                && let Ok(s) = m.lock().slots.get_mut(op.slot)
            {
                s.login = None;
            }
            return Err(rv);
        }
    };
    let signature = fit_signature(op.key.algorithm, signature, expected)?;
    log::debug!("session {session}: signed ({} bytes)", signature.len());
    Ok(SignOutput::Signature(signature))
}

/// RSA signatures are as long as the modulus (a carrier may drop leading zero bytes); EC and SM2
/// signatures are `r ‖ s` of the field size. Anything else is a carrier fault.
fn fit_signature(alg: KeyAlgorithm, mut signature: Vec<u8>, expected: usize) -> P11Result<Vec<u8>> {
    if signature.len() == expected {
        return Ok(signature);
    }
    if matches!(alg, KeyAlgorithm::Rsa { .. }) && signature.len() < expected {
        let mut padded = vec![0u8; expected - signature.len()];
        padded.append(&mut signature);
        return Ok(padded);
    }
    log::warn!("the carrier returned a {}-byte signature where {expected} bytes were expected", signature.len());
    Err(CKR_DEVICE_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_signatures_are_padded_to_the_modulus() {
        let alg = KeyAlgorithm::Rsa { bits: 2048 };
        assert_eq!(fit_signature(alg, vec![1; 255], 256).unwrap()[0], 0);
        assert_eq!(fit_signature(KeyAlgorithm::P256, vec![1; 63], 64), Err(CKR_DEVICE_ERROR));
        assert_eq!(fit_signature(KeyAlgorithm::P256, vec![1; 64], 64).unwrap().len(), 64);
    }
}
