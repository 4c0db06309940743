//! The module's state between `C_Initialize` and `C_Finalize`, and the helpers every function
//! group shares: finding a session, listing carriers, reading a carrier's objects.
//!
//! Locking: one mutex over slots, sessions and handles, never held while the agent is asked
//! anything (a PIN dialog can take a minute; other threads keep working meanwhile). Functions
//! read what they need under the lock, call the agent without it, and re-check under the lock.
//!
//! Fork safety: the state records the process id it was made in. In a child after `fork()`
//! every function answers `CKR_CRYPTOKI_NOT_INITIALIZED` until the child calls `C_Initialize`
//! (as PKCS#11 requires), which builds fresh state with its own agent connections; the parent's
//! connections are never used from the child.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use cryptoki_sys::*;

use ukey_api::{Capabilities, ObjectId};

use crate::agent::Agent;
use crate::objects::{self, Class, P11Object};
use crate::pin_mode::PinMode;
use crate::rv::{self, Context, P11Result};
use crate::session::Session;
use crate::slots::{ObjectCache, SlotTable};

/// How long a carrier's object list is used without asking the agent again.
const OBJECT_TTL: Duration = Duration::from_secs(3);

static CURRENT: RwLock<Option<Arc<Module>>> = RwLock::new(None);

/// The state of an initialised module.
pub struct Module {
    pid: u32,
    /// The agent.
    pub agent: Agent,
    /// Who asks for the PIN, read once at `C_Initialize`.
    pub pin_mode: PinMode,
    inner: Mutex<Inner>,
    finalized: AtomicBool,
}

/// Everything behind the module's lock.
#[derive(Default)]
pub struct Inner {
    /// Slots.
    pub slots: SlotTable,
    /// Open sessions.
    pub sessions: HashMap<CK_SESSION_HANDLE, Session>,
    next_session: CK_SESSION_HANDLE,
    handles: HashMap<(CK_SLOT_ID, Class, ObjectId), CK_OBJECT_HANDLE>,
    next_handle: CK_OBJECT_HANDLE,
}

impl Inner {
    /// A new session handle (never reused while the module lives).
    pub fn new_session_handle(&mut self) -> CK_SESSION_HANDLE {
        self.next_session += 1;
        self.next_session
    }

    /// A session by handle.
    pub fn session(&self, handle: CK_SESSION_HANDLE) -> P11Result<&Session> {
        self.sessions.get(&handle).ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    /// A session by handle, mutable.
    pub fn session_mut(&mut self, handle: CK_SESSION_HANDLE) -> P11Result<&mut Session> {
        self.sessions.get_mut(&handle).ok_or(CKR_SESSION_HANDLE_INVALID)
    }

    /// Closes every session of a slot (its token went away, or `C_CloseAllSessions`).
    pub fn close_sessions_of(&mut self, slot: CK_SLOT_ID) {
        self.sessions.retain(|_, s| s.slot != slot);
    }

    /// Whether the program is logged in to a slot's token.
    pub fn logged_in(&self, slot: CK_SLOT_ID) -> bool {
        self.slots.get(slot).map(|s| s.login.is_some()).unwrap_or(false)
    }

    /// The stable handle of an object.
    fn handle_for(&mut self, slot: CK_SLOT_ID, object: &P11Object) -> CK_OBJECT_HANDLE {
        let (class, id) = object.key();
        if let Some(h) = self.handles.get(&(slot, class, id.clone())) {
            return *h;
        }
        self.next_handle += 1;
        self.handles.insert((slot, class, id), self.next_handle);
        self.next_handle
    }
}

impl Module {
    fn new() -> Self {
        Module {
            pid: std::process::id(),
            agent: Agent::for_current_user(),
            pin_mode: PinMode::from_env(),
            inner: Mutex::new(Inner::default()),
            finalized: AtomicBool::new(false),
        }
    }

    /// The lock over slots and sessions (a poisoned lock is still used: every change under it is
    /// a plain assignment that cannot leave it half-done).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True once `C_Finalize` ran (blocked `C_WaitForSlotEvent` calls give up).
    pub fn finalized(&self) -> bool {
        self.finalized.load(Ordering::SeqCst)
    }

    /// Asks the agent for its carriers and updates the slots; without an agent every token is
    /// absent (no slots are invented, no error is raised).
    pub fn refresh_slots(&self) {
        let carriers = match self.agent.carriers() {
            Ok(c) => c,
            Err(e) => {
                log::debug!("no carriers listed: {e}");
                Vec::new()
            }
        };
        let mut inner = self.lock();
        let removed = inner.slots.update(carriers);
        for slot in removed {
            log::debug!("slot {slot}: token removed; closing its sessions");
            inner.close_sessions_of(slot);
        }
    }

    /// Makes sure the slots were listed once, so ids given by a program can be checked.
    pub fn ensure_listed(&self) {
        if !self.lock().slots.listed_once() {
            self.refresh_slots();
        }
    }

    /// A carrier's capabilities, read once per insertion.
    pub fn capabilities(&self, slot: CK_SLOT_ID) -> P11Result<Capabilities> {
        let token = {
            let inner = self.lock();
            let s = inner.slots.present(slot)?;
            if let Some(c) = &s.capabilities {
                return Ok(c.clone());
            }
            s.token()
        };
        let caps = self.agent.capabilities(&token).map_err(|e| rv::for_link_error(&e, Context::Read))?;
        let mut inner = self.lock();
        if let Ok(s) = inner.slots.present_mut(slot)
            && s.token() == token
        {
            s.capabilities = Some(caps.clone());
        }
        Ok(caps)
    }

    /// A carrier's objects with their handles, from the cache or the agent.
    pub fn objects(&self, slot: CK_SLOT_ID) -> P11Result<Vec<(CK_OBJECT_HANDLE, Arc<P11Object>)>> {
        let token = {
            let inner = self.lock();
            let s = inner.slots.present(slot)?;
            if let Some(cache) = &s.objects
                && cache.read_at.elapsed() < OBJECT_TTL
            {
                return Ok(cache.objects.clone());
            }
            s.token()
        };
        let caps = self.capabilities(slot)?;
        let list = self.agent.objects(&token).map_err(|e| rv::for_link_error(&e, Context::Read))?;
        for problem in &list.problems {
            log::debug!("slot {slot}: object {} not shown: {}", problem.object, problem.reason);
        }
        let built = objects::build(&list, &caps, self.pin_mode.login_required());
        let mut inner = self.lock();
        let with_handles: Vec<(CK_OBJECT_HANDLE, Arc<P11Object>)> =
            built.into_iter().map(|o| (inner.handle_for(slot, &o), Arc::new(o))).collect();
        let s = inner.slots.present_mut(slot)?;
        if s.token() == token {
            s.objects = Some(ObjectCache { read_at: Instant::now(), objects: with_handles.clone() });
        }
        Ok(with_handles)
    }

    /// Forgets a slot's cached objects (after login or logout, or a change).
    pub fn forget_objects(&self, slot: CK_SLOT_ID) {
        if let Ok(s) = self.lock().slots.get_mut(slot) {
            s.objects = None;
        }
    }

    /// The object a handle names, as the session's program may see it.
    pub fn object(&self, session: CK_SESSION_HANDLE, handle: CK_OBJECT_HANDLE) -> P11Result<Arc<P11Object>> {
        let (slot, logged_in) = {
            let inner = self.lock();
            let slot = inner.session(session)?.slot;
            (slot, inner.logged_in(slot))
        };
        let objects = self.objects(slot)?;
        objects
            .into_iter()
            .find(|(h, o)| *h == handle && (!o.private || logged_in))
            .map(|(_, o)| o)
            .ok_or(CKR_OBJECT_HANDLE_INVALID)
    }
}

/// The current module state, if initialised in this process.
pub fn current() -> P11Result<Arc<Module>> {
    let guard = CURRENT.read().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some(m) if m.pid == std::process::id() => Ok(Arc::clone(m)),
        _ => Err(CKR_CRYPTOKI_NOT_INITIALIZED),
    }
}

/// Installs fresh state (`C_Initialize`); refuses when this process already has one.
pub fn install() -> P11Result<Arc<Module>> {
    let mut guard = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_some_and(|m| m.pid == std::process::id()) {
        return Err(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    }
    // A state inherited through fork() belongs to the parent: it is replaced, never used.
    let module = Arc::new(Module::new());
    *guard = Some(Arc::clone(&module));
    Ok(module)
}

/// Removes the state (`C_Finalize`).
pub fn remove() -> P11Result<()> {
    let mut guard = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    match guard.take() {
        Some(m) if m.pid == std::process::id() => {
            m.finalized.store(true, Ordering::SeqCst);
            Ok(())
        }
        other => {
            *guard = other;
            Err(CKR_CRYPTOKI_NOT_INITIALIZED)
        }
    }
}
