//! `C_Login` and `C_Logout`.
//!
//! Tokens announce a protected authentication path, so programs log in with a NULL PIN: the
//! agent then asks the holder in its own PIN dialog (naming this program, its pid and the
//! carrier), checks the PIN on the carrier, and keeps the login for this program's connection
//! until `C_Logout`, the last session closing, `C_Finalize` or the program's exit. Every
//! signature still passes the agent's custody policy and lands in its audit log.
//!
//! A program may still pass a PIN (`pkcs11-tool --pin`, scripts). It is forwarded to the agent,
//! which checks it on the carrier under the same policy and audit; refusing it would break such
//! programs without protecting anything, since the program already holds the PIN. The PIN is
//! kept in a zeroizing buffer and never logged.
//!
//! In the agent PIN mode ([`crate::pin_mode`]) logging in is optional; a program that does log
//! in still gets all of the above, and its signatures ride on that login.
//!
//! `CKU_CONTEXT_SPECIFIC` (keys with `CKA_ALWAYS_AUTHENTICATE`) applies to the signing operation
//! in progress: with a PIN, that PIN signs; without one, the agent asks the holder for that
//! signature. The security officer cannot log in through this module: carrier administration
//! goes through `ukey` itself.

use cryptoki_sys::*;

use ukey_api::Pin;

use crate::module;
use crate::rv::{self, Context, P11Result};

/// `C_Login`. `pin` is `None` for a NULL (or empty) PIN.
pub fn login(session: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: Option<Pin>) -> P11Result<()> {
    let m = module::current()?;
    match user_type {
        CKU_USER => {}
        CKU_CONTEXT_SPECIFIC => return context_login(session, pin),
        CKU_SO => return Err(CKR_FUNCTION_NOT_SUPPORTED),
        _ => return Err(CKR_USER_TYPE_INVALID),
    }
    let (slot, token) = {
        let mut inner = m.lock();
        let slot = inner.session(session)?.slot;
        let s = inner.slots.present_mut(slot)?;
        if let Some(generation) = s.login {
            if m.agent.login_alive(generation) {
                return Err(CKR_USER_ALREADY_LOGGED_IN);
            }
            // The agent forgot it (restarted, or the connection broke): log in afresh.
            s.login = None;
        }
        (slot, s.token())
    };
    log::debug!("slot {slot}: logging in ({})", if pin.is_some() { "PIN from the program" } else { "agent dialog" });
    let generation = m.agent.login(&token, pin.as_ref()).map_err(|e| {
        log::debug!("slot {slot}: login failed: {e}");
        rv::for_link_error(&e, Context::Login)
    })?;
    {
        let mut inner = m.lock();
        let s = inner.slots.present_mut(slot)?;
        if s.token() != token {
            return Err(CKR_DEVICE_REMOVED);
        }
        s.login = Some(generation);
    }
    m.forget_objects(slot);
    log::debug!("slot {slot}: logged in");
    Ok(())
}

fn context_login(session: CK_SESSION_HANDLE, pin: Option<Pin>) -> P11Result<()> {
    let m = module::current()?;
    let mut inner = m.lock();
    let op = inner.session_mut(session)?.sign.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
    op.authenticate(pin);
    Ok(())
}

/// `C_Logout`.
pub fn logout(session: CK_SESSION_HANDLE) -> P11Result<()> {
    let m = module::current()?;
    let (slot, token, generation) = {
        let mut inner = m.lock();
        let slot = inner.session(session)?.slot;
        let s = inner.slots.get_mut(slot)?;
        let generation = s.login.take().ok_or(CKR_USER_NOT_LOGGED_IN)?;
        let token = s.token();
        for sess in inner.sessions.values_mut().filter(|x| x.slot == slot) {
            sess.sign = None;
            sess.find = None;
        }
        (slot, token, generation)
    };
    m.forget_objects(slot);
    if let Err(e) = m.agent.logout(&token, generation) {
        log::debug!("slot {slot}: the agent did not confirm the logout: {e}");
    }
    Ok(())
}
