//! The answers of functions that do no work here: everything the module does not offer, the
//! legacy parallel-function calls, and the random-number functions (the carriers' generators are
//! not reachable through the agent).

use cryptoki_sys::*;

use crate::module;
use crate::rv::P11Result;

/// `CKR_FUNCTION_NOT_SUPPORTED`, once initialised.
pub fn answer() -> P11Result<()> {
    module::current()?;
    Err(CKR_FUNCTION_NOT_SUPPORTED)
}

/// `C_GetFunctionStatus` and `C_CancelFunction`: legacy functions that always say
/// `CKR_FUNCTION_NOT_PARALLEL`.
pub fn not_parallel() -> P11Result<()> {
    module::current()?;
    Err(CKR_FUNCTION_NOT_PARALLEL)
}

/// `C_SeedRandom` and `C_GenerateRandom`: there is no generator to reach (`CKR_RANDOM_NO_RNG`,
/// which programs such as `pkcs11-tool --test` treat as "not available").
pub fn no_rng(session: CK_SESSION_HANDLE) -> P11Result<()> {
    let m = module::current()?;
    m.lock().session(session)?;
    Err(CKR_RANDOM_NO_RNG)
}
