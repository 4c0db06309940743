//! Loading a PKCS#11 library and initialising it, once per process.
//!
//! A library is loaded at most once per process whatever path reaches it: a second
//! `C_Initialize` on the same library fails, and one owner's `C_Finalize` would pull the module
//! out from under the other. [`load`] keeps a process-wide table of live modules keyed by the
//! canonical path; the last [`Module`] handle to go calls `C_Finalize`.
//! Every failure becomes a [`LoadError`] whose message says what was wrong and what to do; it
//! never stops other modules from loading.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

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
}

/// One loaded and initialised PKCS#11 library.
pub struct Module {
    canonical: PathBuf,
    ctx: Pkcs11,
    owns_init: bool,
    info: LibraryInfo,
    /// The module cannot use OS locking: every call into it is serialised by `call_lock`.
    serialize_calls: bool,
    call_lock: Mutex<()>,
    raw: OnceLock<Result<Arc<RawModule>, String>>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("path", &self.canonical).field("info", &self.info).finish_non_exhaustive()
    }
}

fn loaded() -> &'static Mutex<HashMap<PathBuf, Weak<Module>>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Weak<Module>>>> = OnceLock::new();
    LOADED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Loads and initialises the library at `path`, or hands back the copy already loaded.
pub fn load(path: &Path) -> Result<Arc<Module>, LoadError> {
    if !path.exists() {
        return Err(LoadError::Missing(path.to_path_buf()));
    }
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    loop {
        let mut table = loaded().lock().unwrap_or_else(|p| p.into_inner());
        match table.get(&canonical).map(Weak::upgrade) {
            Some(Some(module)) => return Ok(module),
            // The last handle is being dropped right now: let its C_Finalize finish (it removes
            // the entry) before initialising the library again.
            Some(None) => {
                drop(table);
                std::thread::yield_now();
            }
            None => {
                let module = Arc::new(open(path, canonical.clone())?);
                table.insert(canonical, Arc::downgrade(&module));
                return Ok(module);
            }
        }
    }
}

fn open(path: &Path, canonical: PathBuf) -> Result<Module, LoadError> {
    let ctx = Pkcs11::new(path).map_err(|e| match e {
        CkError::LibraryLoading(reason) => {
            LoadError::NotALibrary { path: path.to_path_buf(), reason: reason.to_string() }
        }
        CkError::MissingSymbol(name) => {
            LoadError::NotPkcs11 { path: path.to_path_buf(), reason: format!("it has no {name}") }
        }
        other => LoadError::NotPkcs11 { path: path.to_path_buf(), reason: other.to_string() },
    })?;
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
    Ok(Module { canonical, ctx, owns_init, info, serialize_calls, call_lock: Mutex::new(()), raw: OnceLock::new() })
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
        // Under the table lock, so a concurrent `load` of the same library waits for the
        // finalisation instead of initialising a copy that is about to be finalised.
        let mut table = loaded().lock().unwrap_or_else(|p| p.into_inner());
        if self.owns_init
            && let Err(e) = self.ctx.clone().finalize()
        {
            debug!("{}: C_Finalize: {e}", self.canonical.display());
        }
        if table.get(&self.canonical).is_some_and(|w| w.strong_count() == 0) {
            table.remove(&self.canonical);
        }
    }
}
