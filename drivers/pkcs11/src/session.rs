//! One token's session, login state and caches, behind one lock.
//!
//! cryptoki's `Session` is `Send` but not `Sync`, and PKCS#11 login state is shared by every
//! session of the application on a token. So each token gets exactly one [`Token`] per process
//! (the driver hands the same one to every carrier object for that token), holding one session
//! behind a mutex: operations on one token run one at a time, other tokens are never blocked.
//!
//! A transaction ([`Token::run`]) finds the token's slot again if needed (slot ids change when a
//! token is re-inserted), opens the session, lets the operation log in, and logs out afterwards
//! unless the module is configured to keep the login. When the token went away mid-way
//! (`CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`, `CKR_SESSION_HANDLE_INVALID`) the session is
//! dropped, and one retry on a fresh session recovers a token that came back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use log::debug;
use ukey_api::{Credential, Error, KeyAlgorithm, PinRole, Result};

use crate::errors::{self, PinFlags};
use crate::module::Module;
use crate::sign::Offered;
use crate::sm2::Sm2Profile;

/// What identifies a token across re-insertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// Serial number (trimmed); empty for uninitialised tokens, which are matched by slot.
    pub serial: String,
    /// Model (trimmed).
    pub model: String,
    /// Manufacturer (trimmed).
    pub manufacturer: String,
}

impl TokenIdentity {
    /// Reads the identity from token info.
    pub fn of(info: &TokenInfo) -> Self {
        TokenIdentity {
            serial: info.serial_number().trim().to_string(),
            model: info.model().trim().to_string(),
            manufacturer: info.manufacturer_id().trim().to_string(),
        }
    }

    fn matches(&self, info: &TokenInfo) -> bool {
        !self.serial.is_empty() && TokenIdentity::of(info) == *self
    }
}

/// A private key found for an operation (or kept while the login is kept).
#[derive(Debug, Clone)]
pub struct FoundKey {
    /// Its handle in the current login.
    pub handle: ObjectHandle,
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// `CKA_ALWAYS_AUTHENTICATE`.
    pub always_authenticate: bool,
    /// The public point (`04‖x‖y`) for SM2 keys, when readable (needed for Z).
    pub public_point: Option<Vec<u8>>,
}

/// Per-module settings a token needs for its operations.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Stay logged in between operations.
    pub keep_login: bool,
    /// The module's SM2 numbers.
    pub sm2: Option<Sm2Profile>,
    /// Where the module lives (for `CarrierInfo::location`).
    pub module_path: String,
    /// Short module name (part of the carrier id).
    pub module_name: String,
}

/// One token of one module: the lock, the session and what is cached.
pub struct Token {
    // Field order matters: the session closes before the module handle is released.
    state: Mutex<TokenState>,
    module: Arc<Module>,
    identity: TokenIdentity,
    settings: TokenSettings,
}

struct TokenState {
    slot: Slot,
    session: Option<Session>,
    /// The user is logged in and the login is being kept (`keep_login`).
    user_kept: bool,
    /// Keys found during the kept login, by `CKA_ID`.
    keys: HashMap<Vec<u8>, FoundKey>,
    mechanisms: Option<Arc<Vec<MechanismType>>>,
    offered: Option<Arc<Offered>>,
    /// [`Token::run_if_initialized`] has just read the token info of `slot`: the session its
    /// transaction opens needs no second read. Consumed by the next transaction.
    slot_just_checked: bool,
}

/// The state of one running operation: the token, its locked state and the login it made.
pub struct Tx<'a> {
    token: &'a Token,
    state: MutexGuard<'a, TokenState>,
    _serial: Option<MutexGuard<'a, ()>>,
    logged_in: Option<PinRole>,
    reused_session: bool,
}

impl Token {
    /// A token found in `slot` with the given identity.
    pub fn new(module: Arc<Module>, slot: Slot, identity: TokenIdentity, settings: TokenSettings) -> Self {
        Token {
            state: Mutex::new(TokenState {
                slot,
                session: None,
                user_kept: false,
                keys: HashMap::new(),
                mechanisms: None,
                offered: None,
                slot_just_checked: false,
            }),
            module,
            identity,
            settings,
        }
    }

    /// The module the token is reached through.
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// Serial, model, manufacturer.
    pub fn identity(&self) -> &TokenIdentity {
        &self.identity
    }

    /// Per-module settings.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The slot the token was last seen in.
    pub fn slot(&self) -> Slot {
        self.lock().slot
    }

    fn lock(&self) -> MutexGuard<'_, TokenState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Token info, read fresh (PIN flags change with every try). Finds the slot again when the
    /// token moved.
    pub fn token_info(&self) -> Result<TokenInfo> {
        let mut state = self.lock();
        let info = self.resolve_slot(&mut state)?;
        Ok(info)
    }

    /// Runs one operation as a transaction: locked, on a live session, logged out afterwards
    /// (unless the login is kept). A stale session from an earlier transaction that turns out to
    /// be dead is replaced and the operation retried once.
    pub fn run<T>(&self, during: &str, mut op: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.begin(during)?;
            let result = op(&mut tx);
            let reused = tx.reused_session;
            let removed = matches!(result, Err(Error::TokenRemoved));
            tx.finish(removed);
            match result {
                Err(Error::TokenRemoved) if reused && attempt == 1 => {
                    debug!("{during}: the cached session is gone; retrying on a fresh one");
                }
                other => return other,
            }
        }
    }

    /// As [`Token::run`] for operations that mean nothing on an uninitialised token: the token
    /// info is read once, here, and `otherwise` answers for an uninitialised token. The same
    /// read is the slot check of the session the transaction opens, so a fresh session costs one
    /// `C_GetTokenInfo`, not two.
    pub fn run_if_initialized<T>(
        &self,
        during: &str,
        otherwise: impl FnOnce() -> T,
        op: impl FnMut(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        {
            let mut state = self.lock();
            // An open session means the token was initialised when it opened, and
            // `C_InitToken` needs every session closed first (ukey resets the token before it).
            if state.session.is_some() {
                drop(state);
                return self.run(during, op);
            }
            let info = self.resolve_slot(&mut state)?;
            if !info.token_initialized() {
                return Ok(otherwise());
            }
            state.slot_just_checked = true;
        }
        self.run(during, op)
    }

    fn begin(&self, during: &str) -> Result<Tx<'_>> {
        let serial = self.module.serialize();
        let mut state = self.lock();
        let reused_session = state.session.is_some();
        let checked = std::mem::take(&mut state.slot_just_checked);
        if !reused_session {
            if checked {
                self.open_session_on_checked_slot(&mut state, during)?;
            } else {
                self.open_session(&mut state, during)?;
            }
        }
        Ok(Tx { token: self, state, _serial: serial, logged_in: None, reused_session })
    }

    /// Finds the token's slot again and opens a session on it (read-only on a write-protected
    /// token).
    fn open_session(&self, state: &mut TokenState, during: &str) -> Result<()> {
        self.resolve_slot(state)?;
        self.open_session_on_checked_slot(state, during)
    }

    /// Opens a session on `state.slot`, known to hold this token.
    fn open_session_on_checked_slot(&self, state: &mut TokenState, during: &str) -> Result<()> {
        let session = match self.module.ctx().open_rw_session(state.slot) {
            Ok(s) => s,
            Err(CkError::Pkcs11(RvError::TokenWriteProtected, _)) => {
                self.module.ctx().open_ro_session(state.slot).map_err(|e| errors::map(e, during))?
            }
            Err(e) => {
                if errors::is_removal(&e) {
                    forget_session(state);
                }
                return Err(errors::map(e, during));
            }
        };
        state.session = Some(session);
        Ok(())
    }

    /// Makes sure `state.slot` holds this token, scanning the module's slots when it moved.
    fn resolve_slot(&self, state: &mut TokenState) -> Result<TokenInfo> {
        let ctx = self.module.ctx();
        match ctx.get_token_info(state.slot) {
            Ok(info) if self.identity.serial.is_empty() || self.identity.matches(&info) => return Ok(info),
            Ok(_) => {}
            Err(e) if errors::is_removal(&e) => {}
            Err(e) => return Err(errors::map(e, "reading the token information")),
        }
        forget_session(state);
        if self.identity.serial.is_empty() {
            return Err(Error::TokenRemoved);
        }
        let slots = ctx.get_slots_with_token().map_err(|e| errors::map(e, "listing the module's slots"))?;
        for slot in slots {
            if let Ok(info) = ctx.get_token_info(slot)
                && self.identity.matches(&info)
            {
                debug!("token {} is now in slot {}", self.identity.serial, slot.id());
                state.slot = slot;
                return Ok(info);
            }
        }
        Err(Error::TokenRemoved)
    }

    /// Drops the session and every cache (after a removal, or before `C_InitToken`, which needs
    /// all sessions closed).
    pub fn reset(&self) {
        forget_session(&mut self.lock());
    }
}

fn forget_session(state: &mut TokenState) {
    state.session = None;
    state.slot_just_checked = false;
    state.user_kept = false;
    state.keys.clear();
    state.mechanisms = None;
    state.offered = None;
}

impl<'a> Tx<'a> {
    /// The open session.
    pub fn session(&self) -> Result<&Session> {
        self.state.session.as_ref().ok_or(Error::TokenRemoved)
    }

    /// The token this transaction runs on.
    pub fn token(&self) -> &'a Token {
        self.token
    }

    /// The token's current slot.
    pub fn slot(&self) -> Slot {
        self.state.slot
    }

    /// Maps a cryptoki error, dropping the session when the token is gone.
    pub fn fail(&mut self, err: CkError, during: &str) -> Error {
        if errors::is_removal(&err) || errors::is_stuck_session(&err) {
            forget_session(&mut self.state);
        }
        errors::map(err, during)
    }

    /// Token info for the current slot.
    pub fn token_info(&mut self) -> Result<TokenInfo> {
        let slot = self.state.slot;
        self.token.module.ctx().get_token_info(slot).map_err(|e| self.fail(e, "reading the token information"))
    }

    /// The token's mechanism list (cached until the session is reset).
    pub fn mechanisms(&mut self) -> Result<Arc<Vec<MechanismType>>> {
        if let Some(m) = &self.state.mechanisms {
            return Ok(m.clone());
        }
        let slot = self.state.slot;
        let list = Arc::new(
            self.token
                .module
                .ctx()
                .get_mechanism_list(slot)
                .map_err(|e| self.fail(e, "listing the token's mechanisms"))?,
        );
        self.state.mechanisms = Some(list.clone());
        Ok(list)
    }

    /// What the token offers for signing and generation (read once per session).
    pub fn offered(&mut self) -> Result<Arc<Offered>> {
        if let Some(o) = &self.state.offered {
            return Ok(o.clone());
        }
        let offered = Arc::new(Offered::read(self)?);
        self.state.offered = Some(offered.clone());
        Ok(offered)
    }

    /// As [`Tx::offered`], with the key generation limits read too (capabilities, key
    /// generation).
    pub fn offered_with_keygen(&mut self) -> Result<Arc<Offered>> {
        let offered = self.offered()?;
        if offered.has_keygen_limits() {
            return Ok(offered);
        }
        let mut full = (*offered).clone();
        full.read_keygen_limits(self);
        let full = Arc::new(full);
        self.state.offered = Some(full.clone());
        Ok(full)
    }

    /// True while a kept user login is active (no PIN needed for this operation).
    pub fn user_login_kept(&self) -> bool {
        self.state.user_kept
    }

    /// A key found earlier in the kept login.
    pub fn cached_key(&self, id: &[u8]) -> Option<FoundKey> {
        self.state.keys.get(id).cloned()
    }

    /// Remembers a key for the rest of a kept login (dropped at logout).
    pub fn cache_key(&mut self, id: &[u8], key: FoundKey) {
        if self.state.user_kept {
            self.state.keys.insert(id.to_vec(), key);
        }
    }

    /// Forgets a cached key whose handle went stale.
    pub fn forget_key(&mut self, id: &[u8]) {
        self.state.keys.remove(id);
    }

    /// Logs in as `role`. With a kept user login this is a no-op for the user role. A wrong PIN
    /// error carries the token's PIN flags as read right after the failure.
    pub fn login(&mut self, role: PinRole, auth: &Credential, during: &str) -> Result<()> {
        if role == PinRole::User && self.state.user_kept {
            return Ok(());
        }
        if role == PinRole::So && self.state.user_kept {
            // A kept user login would make the SO login fail; the SO operation comes first.
            self.logout();
        }
        let user_type = match role {
            PinRole::User => UserType::User,
            PinRole::So => UserType::So,
        };
        let result = self.present(user_type, auth, role);
        match result {
            Ok(()) => {}
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                // Left over from another application state; start clean so the PIN is checked.
                let _ = self.session()?.logout();
                self.present(user_type, auth, role).map_err(|e| self.fail_login(e, during, role))?;
            }
            Err(e) => return Err(self.fail_login(e, during, role)),
        }
        self.logged_in = Some(role);
        if role == PinRole::User && self.token.settings.keep_login {
            self.state.user_kept = true;
        }
        Ok(())
    }

    /// The context-specific login a `CKA_ALWAYS_AUTHENTICATE` key needs after `C_SignInit`.
    pub fn login_context_specific(&mut self, auth: &Credential, during: &str) -> Result<()> {
        self.present(UserType::ContextSpecific, auth, PinRole::User)
            .map_err(|e| self.fail_login(e, during, PinRole::User))
    }

    fn present(&mut self, user_type: UserType, auth: &Credential, role: PinRole) -> Result<(), CkError> {
        let pin = match auth {
            Credential::Pin(pin) => Some(AuthPin::from(pin.expose().to_string())),
            Credential::ProtectedPath => None,
        };
        if pin.is_none() {
            let info = self.token.module.ctx().get_token_info(self.state.slot)?;
            if !info.protected_authentication_path() {
                debug!("{role}: PIN pad requested on a token without one");
                return Err(CkError::Pkcs11(RvError::ArgumentsBad, cryptoki::context::Function::Login));
            }
        }
        self.session()
            .map_err(|_| CkError::Pkcs11(RvError::SessionClosed, cryptoki::context::Function::Login))?
            .login(user_type, pin.as_ref())
    }

    fn fail_login(&mut self, err: CkError, during: &str, role: PinRole) -> Error {
        if matches!(err, CkError::Pkcs11(RvError::ArgumentsBad, _)) {
            return Error::InvalidInput(format!("{during}: this token has no PIN pad; supply the {role}"));
        }
        let flags = match errors::rv_of(&err) {
            Some(RvError::PinIncorrect | RvError::PinLocked) => {
                self.token.module.ctx().get_token_info(self.state.slot).ok().map(|i| PinFlags::from_token(&i, role))
            }
            _ => None,
        };
        if errors::is_removal(&err) || errors::is_stuck_session(&err) {
            forget_session(&mut self.state);
        }
        errors::map_login(err, during, role, flags)
    }

    /// Replaces the session by a fresh one and logs the user in on it, for clean-up that must
    /// still happen after the old session ended mid-operation (a key generation removing its
    /// half-made pair). Fails with `TokenRemoved` when the token is really gone.
    pub fn reopen(&mut self, auth: &Credential, during: &str) -> Result<()> {
        forget_session(&mut self.state);
        self.logged_in = None;
        self.token.open_session(&mut self.state, during)?;
        self.login(PinRole::User, auth, during)
    }

    /// Logs out now (before the end of the transaction), e.g. between an SO and a user step.
    pub fn logout(&mut self) {
        if self.logged_in.take().is_some() || self.state.user_kept {
            if let Some(session) = &self.state.session
                && let Err(e) = session.logout()
            {
                debug!("C_Logout: {e}");
            }
            self.state.user_kept = false;
            self.state.keys.clear();
        }
    }

    fn finish(mut self, removed: bool) {
        if removed {
            forget_session(&mut self.state);
            return;
        }
        let keep = self.logged_in == Some(PinRole::User) && self.token.settings.keep_login;
        if self.logged_in.is_some() && !keep {
            self.logout();
        }
    }
}
