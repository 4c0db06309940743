//! Loading a PKCS#11 library and initialising it, once per process.
//!
//! A library is loaded at most once per process whatever path reaches it: a second
//! `C_Initialize` on the same library fails, and one owner's `C_Finalize` would pull the module
//! out from under the other. [`load`] keeps a process-wide table of live modules keyed by the
//! canonical path; the last [`Module`] handle to go calls `C_Finalize`.
//! Every failure becomes a [`LoadError`] whose message says what was wrong and what to do; it
//! never stops other modules from loading.
//!
//! A vendor module can block forever in its own start-up (OpenSC 0.23's `opensc-pkcs11.so`
//! intermittently deadlocks on its card mutex inside `C_Initialize` on our test rig). So each
//! library is started on a worker thread ([`start`]) and waited for with a deadline; a module that
//! misses it is reported ([`LoadError::NoAnswer`]), its worker thread is leaked (it cannot be
//! killed), and the library is never called again in this process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak, mpsc};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use log::{debug, warn};

use crate::raw::RawModule;

/// What the library says about itself (`C_GetInfo`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LibraryInfo {
    /// `libraryDescription`.
    pub description: String,
    /// `manufacturerID`.
    pub manufacturer: String,
    /// `libraryVersion`.
    pub version: String,
    /// The Cryptoki version the library implements.
    pub cryptoki_version: String,
}

/// Why a module did not load, phrased for `ukey modules`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// No file at the path.
    #[error("{0}: no such file; install the vendor's package or fix the path in the [pkcs11] configuration")]
    Missing(PathBuf),
    /// The file is not a loadable shared library.
    #[error("{path}: not a loadable library ({reason}); point the configuration at the vendor's PKCS#11 .so file")]
    NotALibrary {
        /// The file.
        path: PathBuf,
        /// The dynamic loader's complaint.
        reason: String,
    },
    /// A library, but not a PKCS#11 module.
    #[error("{path}: loads, but is not a PKCS#11 module ({reason})")]
    NotPkcs11 {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// `C_Initialize` failed.
    #[error(
        "{path}: C_Initialize failed with {rv}; the module could not start — check its own configuration (for SoftHSM: SOFTHSM2_CONF and its token directory)"
    )]
    InitializeFailed {
        /// The file.
        path: PathBuf,
        /// The return code.
        rv: String,
    },
    /// The module did not return from one of its start-up calls within the deadline.
    #[error(
        "{path}: the module did not answer {call} within {seconds} s; ukey leaves it alone for the rest of this run \
         and its tokens are not available. Unplug and replug the token or restart pcscd and try again; if it keeps \
         hanging, update the vendor's module or stop loading it (remove it from the [pkcs11] configuration or its \
         p11-kit registration); a slow but working module needs a larger [pkcs11] init_timeout_ms"
    )]
    NoAnswer {
        /// The file.
        path: PathBuf,
        /// The PKCS#11 call that did not return.
        call: String,
        /// The deadline, in seconds.
        seconds: String,
    },
}

/// One loaded and initialised PKCS#11 library.
pub struct Module {
    canonical: PathBuf,
    /// This library's entry in the process-wide table.
    slot: LibrarySlot,
    ctx: Pkcs11,
    owns_init: bool,
    info: LibraryInfo,
    /// The module cannot use OS locking: every call into it is serialised by `call_lock`.
    serialize_calls: bool,
    call_lock: Mutex<()>,
    raw: OnceLock<Result<Arc<RawModule>, String>>,
    /// The slot list read while starting (a hung `C_GetSlotList` is caught there), handed to the
    /// first enumeration so a one-shot command does not list the slots twice.
    first_slots: Mutex<Option<Vec<cryptoki::slot::Slot>>>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("path", &self.canonical).field("info", &self.info).finish_non_exhaustive()
    }
}

/// One library's entry in the process-wide table: the live module, if any. Its lock is held
/// while the library is opened or finalised, so a second user of the same library waits for
/// that, while other libraries are never held up by it (a hung module blocks only its own entry).
type LibrarySlot = Arc<Mutex<Option<Weak<Module>>>>;

#[derive(Default)]
struct Table {
    libraries: HashMap<PathBuf, LibrarySlot>,
    /// Libraries that missed their deadline, with what they did not answer: never called again
    /// in this process.
    hung: HashMap<PathBuf, LoadError>,
}

fn table() -> MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(Table::default())).lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a worker is in starting a module, so a missed deadline names the call that hung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Loading = 0,
    Initializing = 1,
    Info = 2,
    ListingSlots = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Initializing,
            2 => Phase::Info,
            3 => Phase::ListingSlots,
            _ => Phase::Loading,
        }
    }

    fn call(self) -> &'static str {
        match self {
            Phase::Loading => "dlopen/C_GetFunctionList",
            Phase::Initializing => "C_Initialize",
            Phase::Info => "C_GetInfo",
            Phase::ListingSlots => "C_GetSlotList",
        }
    }
}

/// A module being started on its own worker thread ([`start`]).
pub struct Pending {
    path: PathBuf,
    canonical: PathBuf,
    phase: Arc<AtomicU8>,
    result: Result<mpsc::Receiver<Result<Arc<Module>, LoadError>>, LoadError>,
}

/// Starts loading and initialising the library at `path` on a worker thread: `dlopen`,
/// `C_GetFunctionList`, `C_Initialize`, `C_GetInfo` and one `C_GetSlotList`, the calls a vendor
/// module may never return from. [`Pending::wait`] collects it within a deadline. Starting every
/// module first and then waiting lets them initialise side by side.
pub fn start(path: &Path) -> Pending {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let phase = Arc::new(AtomicU8::new(Phase::Loading as u8));
    let mut pending = Pending {
        path: path.to_path_buf(),
        canonical: canonical.clone(),
        phase: phase.clone(),
        result: Err(LoadError::Missing(path.to_path_buf())),
    };
    if !path.exists() {
        return pending;
    }
    if let Some(known) = table().hung.get(&canonical) {
        pending.result = Err(known.clone());
        return pending;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let worker_path = path.to_path_buf();
    let spawned = std::thread::Builder::new().name("ukey-pkcs11-init".into()).spawn(move || {
        let loaded = load_blocking(&worker_path, canonical, &phase);
        if let Ok(module) = &loaded {
            phase.store(Phase::ListingSlots as u8, Ordering::SeqCst);
            match module.ctx().get_slots_with_token() {
                Ok(slots) => *module.first_slots.lock().unwrap_or_else(|p| p.into_inner()) = Some(slots),
                Err(e) => debug!("{}: C_GetSlotList: {e}", worker_path.display()),
            }
        }
        // The receiver is gone when the deadline passed: the module is then dropped here (its
        // C_Finalize runs) and never used, as its path is marked as hung.
        let _ = tx.send(loaded);
    });
    pending.result = spawned.map(|_| rx).map_err(|e| LoadError::NotPkcs11 {
        path: path.to_path_buf(),
        reason: format!("ukey could not start a thread to initialise it: {e}"),
    });
    pending
}

impl Pending {
    /// Waits for the module until `deadline`. A module that misses it is reported as
    /// [`LoadError::NoAnswer`] and marked so that nothing in this process calls it again.
    ///
    /// The worker thread stuck inside the module cannot be stopped (a thread blocked in foreign
    /// code cannot be killed safely): it is left behind, blocked, until the process exits.
    pub fn wait(self, deadline: Instant, allowed: Duration) -> Result<Arc<Module>, LoadError> {
        let rx = self.result?;
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let phase = Phase::from_u8(self.phase.load(Ordering::SeqCst));
                let err = LoadError::NoAnswer {
                    path: self.path.clone(),
                    call: phase.call().to_string(),
                    seconds: seconds(allowed),
                };
                warn!("{err}");
                table().hung.insert(self.canonical, err.clone());
                Err(err)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(LoadError::NotPkcs11 {
                path: self.path,
                reason: "its initialisation thread ended without an answer (the module crashed it)".into(),
            }),
        }
    }
}

/// `2`, `0.5`, `1.5`: seconds as a person writes them.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 { d.as_secs().to_string() } else { format!("{:.1}", d.as_secs_f64()) }
}

/// Loads and initialises the library at `path` within `allowed`, or hands back the copy already
/// loaded (see [`start`]).
pub fn load(path: &Path, allowed: Duration) -> Result<Arc<Module>, LoadError> {
    start(path).wait(Instant::now() + allowed, allowed)
}

/// Loads the library on the calling thread (the worker's half of [`start`]).
fn load_blocking(path: &Path, canonical: PathBuf, phase: &AtomicU8) -> Result<Arc<Module>, LoadError> {
    loop {
        let slot = {
            let mut table = table();
            if let Some(known) = table.hung.get(&canonical) {
                return Err(known.clone());
            }
            table.libraries.entry(canonical.clone()).or_default().clone()
        };
        let mut live = slot.lock().unwrap_or_else(|p| p.into_inner());
        match live.as_ref().map(Weak::upgrade) {
            Some(Some(module)) => return Ok(module),
            // The last handle is being dropped right now: let its C_Finalize finish (it clears
            // the entry) before initialising the library again.
            Some(None) => {
                drop(live);
                std::thread::yield_now();
            }
            None => {
                let module = Arc::new(open(path, canonical, slot.clone(), phase)?);
                *live = Some(Arc::downgrade(&module));
                return Ok(module);
            }
        }
    }
}

fn open(path: &Path, canonical: PathBuf, slot: LibrarySlot, phase: &AtomicU8) -> Result<Module, LoadError> {
    let ctx = Pkcs11::new(path).map_err(|e| match e {
        CkError::LibraryLoading(reason) => {
            LoadError::NotALibrary { path: path.to_path_buf(), reason: reason.to_string() }
        }
        CkError::MissingSymbol(name) => {
            LoadError::NotPkcs11 { path: path.to_path_buf(), reason: format!("it has no {name}") }
        }
        other => LoadError::NotPkcs11 { path: path.to_path_buf(), reason: other.to_string() },
    })?;
    phase.store(Phase::Initializing as u8, Ordering::SeqCst);
    let (owns_init, serialize_calls) = match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => (true, false),
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {
            warn!("{}: already initialised by another part of this process; ukey will not finalise it", path.display());
            (false, false)
        }
        Err(CkError::Pkcs11(RvError::CantLock, _)) => {
            debug!("{}: no OS locking; ukey serialises its calls", path.display());
            ctx.initialize(CInitializeArgs::new(CInitializeFlags::empty()))
                .map_err(|e| init_failed(path, &e))
                .map(|()| (true, true))?
        }
        Err(e) => return Err(init_failed(path, &e)),
    };
    phase.store(Phase::Info as u8, Ordering::SeqCst);
    let info = match ctx.get_library_info() {
        Ok(i) => LibraryInfo {
            description: i.library_description().trim().to_string(),
            manufacturer: i.manufacturer_id().trim().to_string(),
            version: i.library_version().to_string(),
            cryptoki_version: i.cryptoki_version().to_string(),
        },
        Err(e) => {
            if owns_init && let Err(f) = ctx.clone().finalize() {
                debug!("{}: C_Finalize after failed C_GetInfo: {f}", path.display());
            }
            return Err(LoadError::NotPkcs11 { path: path.to_path_buf(), reason: crate::errors::code_text(&e) });
        }
    };
    debug!("loaded {} ({} {})", path.display(), info.description, info.version);
    Ok(Module {
        canonical,
        slot,
        ctx,
        owns_init,
        info,
        serialize_calls,
        call_lock: Mutex::new(()),
        raw: OnceLock::new(),
        first_slots: Mutex::new(None),
    })
}

fn init_failed(path: &Path, e: &CkError) -> LoadError {
    let rv = match e {
        CkError::Pkcs11(rv, _) => format!("{rv:?} ({rv})"),
        other => other.to_string(),
    };
    LoadError::InitializeFailed { path: path.to_path_buf(), rv }
}

impl Module {
    /// The cryptoki context.
    pub fn ctx(&self) -> &Pkcs11 {
        &self.ctx
    }

    /// The library's own description.
    pub fn info(&self) -> &LibraryInfo {
        &self.info
    }

    /// The library file after following symlinks.
    pub fn path(&self) -> &Path {
        &self.canonical
    }

    /// Held around each operation when the module cannot lock for itself; `None` otherwise, so
    /// carriers of a thread-safe module never wait for each other.
    pub fn serialize(&self) -> Option<MutexGuard<'_, ()>> {
        self.serialize_calls.then(|| self.call_lock.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The slots with a token: the list read at start-up the first time it is asked for, a
    /// fresh `C_GetSlotList` after that.
    pub fn slots_with_token(&self) -> Result<Vec<cryptoki::slot::Slot>, CkError> {
        if let Some(slots) = self.first_slots.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Ok(slots);
        }
        self.ctx.get_slots_with_token()
    }

    /// The raw function list, for vendor numbers (opened on first use).
    pub fn raw(&self) -> Result<Arc<RawModule>, String> {
        self.raw
            .get_or_init(|| {
                RawModule::open(&self.canonical)
                    .map(Arc::new)
                    .map_err(|e| format!("cannot reach the raw PKCS#11 functions of {}: {e}", self.canonical.display()))
            })
            .clone()
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // Under the library's own lock, so a concurrent `load` of the same library waits for the
        // finalisation instead of initialising a copy that is about to be finalised.
        let mut live = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if self.owns_init
            && let Err(e) = self.ctx.clone().finalize()
        {
            debug!("{}: C_Finalize: {e}", self.canonical.display());
        }
        if live.as_ref().is_some_and(|w| w.strong_count() == 0) {
            *live = None;
        }
    }
}
