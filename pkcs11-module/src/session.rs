//! Sessions: `C_OpenSession`, `C_CloseSession`, `C_CloseAllSessions`, `C_GetSessionInfo`.
//!
//! A session belongs to one slot and holds at most one search and one signing operation. The
//! login is the token's (shared by every session of the program, as PKCS#11 says); closing the
//! last session of a token logs the program out of it.

use cryptoki_sys::*;

use crate::module::{self, Module};
use crate::rv::P11Result;
use crate::sign::SignOperation;

/// One session.
pub struct Session {
    /// Its slot.
    pub slot: CK_SLOT_ID,
    /// Opened read/write.
    pub read_write: bool,
    /// The handles a search has still to return.
    pub find: Option<Vec<CK_OBJECT_HANDLE>>,
    /// The signing operation in progress.
    pub sign: Option<SignOperation>,
}

/// What `C_GetSessionInfo` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// Slot.
    pub slot: CK_SLOT_ID,
    /// `CKS_*`.
    pub state: CK_STATE,
    /// `CKF_SERIAL_SESSION`, and `CKF_RW_SESSION` when read/write.
    pub flags: CK_FLAGS,
}

/// `C_OpenSession`.
pub fn open(slot: CK_SLOT_ID, flags: CK_FLAGS) -> P11Result<CK_SESSION_HANDLE> {
    let m = module::current()?;
    if flags & CKF_SERIAL_SESSION == 0 {
        return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    }
    m.ensure_listed();
    let mut inner = m.lock();
    inner.slots.present(slot)?;
    let handle = inner.new_session_handle();
    inner.sessions.insert(handle, Session { slot, read_write: flags & CKF_RW_SESSION != 0, find: None, sign: None });
    log::debug!("session {handle} opened on slot {slot}");
    Ok(handle)
}

/// `C_CloseSession`.
pub fn close(handle: CK_SESSION_HANDLE) -> P11Result<()> {
    let m = module::current()?;
    let slot = {
        let mut inner = m.lock();
        let session = inner.sessions.remove(&handle).ok_or(CKR_SESSION_HANDLE_INVALID)?;
        session.slot
    };
    log_out_if_unused(&m, slot);
    Ok(())
}

/// `C_CloseAllSessions`.
pub fn close_all(slot: CK_SLOT_ID) -> P11Result<()> {
    let m = module::current()?;
    m.ensure_listed();
    {
        let mut inner = m.lock();
        inner.slots.get(slot)?;
        inner.close_sessions_of(slot);
    }
    log_out_if_unused(&m, slot);
    Ok(())
}

/// `C_GetSessionInfo`.
pub fn info(handle: CK_SESSION_HANDLE) -> P11Result<SessionInfo> {
    let m = module::current()?;
    let inner = m.lock();
    let session = inner.session(handle)?;
    let user = inner.logged_in(session.slot);
    let state = match (session.read_write, user) {
        (false, false) => CKS_RO_PUBLIC_SESSION,
        (false, true) => CKS_RO_USER_FUNCTIONS,
        (true, false) => CKS_RW_PUBLIC_SESSION,
        (true, true) => CKS_RW_USER_FUNCTIONS,
    };
    let flags = CKF_SERIAL_SESSION | if session.read_write { CKF_RW_SESSION } else { 0 };
    Ok(SessionInfo { slot: session.slot, state, flags })
}

/// Ends the token's login once no session of the slot is left.
fn log_out_if_unused(m: &Module, slot: CK_SLOT_ID) {
    let ended = {
        let mut inner = m.lock();
        if inner.sessions.values().any(|s| s.slot == slot) {
            None
        } else {
            inner.slots.get_mut(slot).ok().and_then(|s| s.login.take().map(|g| (s.token(), g)))
        }
    };
    if let Some((token, generation)) = ended {
        log::debug!("slot {slot}: last session closed; logging out");
        if let Err(e) = m.agent.logout(&token, generation) {
            log::debug!("logout of {token} failed: {e}");
        }
        m.forget_objects(slot);
    }
}

/// `C_SessionCancel` (PKCS#11 3.0): ends the operations named by `flags`.
pub fn cancel(handle: CK_SESSION_HANDLE, flags: CK_FLAGS) -> P11Result<()> {
    let m = module::current()?;
    let mut inner = m.lock();
    let session = inner.session_mut(handle)?;
    if flags & CKF_SIGN != 0 {
        session.sign = None;
    }
    if flags & CKF_FIND_OBJECTS != 0 {
        session.find = None;
    }
    Ok(())
}
