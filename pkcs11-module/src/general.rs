//! General-purpose functions: `C_Initialize`, `C_Finalize`, `C_GetInfo`.

use cryptoki_sys::*;

use crate::module;
use crate::rv::P11Result;
use crate::text::blank_padded;

/// What `C_Initialize` was given in its `CK_C_INITIALIZE_ARGS` (`None` for a NULL pointer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InitArgs {
    /// `CKF_OS_LOCKING_OK`: the module may use the operating system's locks.
    pub os_locking_ok: bool,
    /// How many of the four mutex callbacks were supplied.
    pub mutex_callbacks: u8,
    /// `pReserved` was not NULL.
    pub reserved: bool,
}

/// `C_Initialize`.
///
/// The module always locks with the operating system's primitives. PKCS#11 lets a library
/// refuse application-supplied mutex callbacks it cannot use (`CKR_CANT_LOCK`) when the
/// application does not also allow OS locking; that is the one case refused. Nothing is
/// contacted here: programs load every module at start-up, and the agent is asked only when a
/// program looks at slots.
pub fn initialize(args: Option<InitArgs>) -> P11Result<()> {
    crate::logging::init();
    if let Some(a) = args {
        if a.reserved {
            return Err(CKR_ARGUMENTS_BAD);
        }
        match a.mutex_callbacks {
            0 => {}
            4 if a.os_locking_ok => {}
            4 => return Err(CKR_CANT_LOCK),
            _ => return Err(CKR_ARGUMENTS_BAD),
        }
    }
    let m = module::install()?;
    log::debug!("PIN mode: {:?} ({})", m.pin_mode, crate::pin_mode::PIN_MODE_ENV);
    match m.agent.socket() {
        Some(path) if path.exists() => log::debug!("initialised; agent socket {}", path.display()),
        // The agent client warns once when it finds nobody listening; this is the detail.
        Some(path) => log::debug!(
            "initialised, but the ukey agent is not running (no socket at {}): no slots are shown until it starts",
            path.display()
        ),
        None => log::debug!("initialised, but no agent socket can be named (XDG_RUNTIME_DIR is not set)"),
    }
    Ok(())
}

/// `C_Finalize`.
pub fn finalize() -> P11Result<()> {
    module::remove()?;
    log::debug!("finalised");
    Ok(())
}

/// What `C_GetInfo` reports.
pub struct ModuleInfo {
    /// Cryptoki version of the interface asked through.
    pub cryptoki_version: CK_VERSION,
    /// Manufacturer, blank padded.
    pub manufacturer: [u8; 32],
    /// Description, blank padded.
    pub description: [u8; 32],
    /// Library version.
    pub library_version: CK_VERSION,
}

/// `C_GetInfo`, for the 2.40 (`v3 == false`) or the 3.0 function list.
pub fn info(v3: bool) -> P11Result<ModuleInfo> {
    module::current()?;
    Ok(ModuleInfo {
        cryptoki_version: if v3 { CK_VERSION { major: 3, minor: 0 } } else { CK_VERSION { major: 2, minor: 40 } },
        manufacturer: blank_padded("ukey project"),
        description: blank_padded("ukey agent forwarder"),
        library_version: library_version(),
    })
}

/// This crate's version as a `CK_VERSION`.
pub fn library_version() -> CK_VERSION {
    let major = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0);
    let minor = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0);
    CK_VERSION { major, minor }
}
