//! A PKCS#11 module for fault-injection tests: it forwards every call to a real module (SoftHSM2
//! by default) and, when told to, makes the Nth call fail with a chosen `CKR_*` code instead.
//!
//! Why a shim: no real module can be made to fail on demand. SoftHSM2 never returns most error
//! codes (it never locks a PIN, never reports a removed device, never runs out of memory), and
//! the codes it does return need states that cannot be reached at an arbitrary call. The real
//! module still does all the work, so objects, sessions and PIN checks are SoftHSM's own.
//!
//! Configuration (read on every call, so one test process can run many plans):
//! - `UKEY_P11_FAULT_REAL`: the module to forward to (default `/usr/lib/softhsm/libsofthsm2.so`);
//! - `UKEY_P11_FAULT_PLAN`: a file holding `GEN N RV [MODE]` — fail call number `N` (1-based,
//!   counted from when `GEN` last changed) with return value `RV` (decimal or `0x` hex); `N = 0`,
//!   an empty or a missing file: no fault. Without the variable, `UKEY_P11_FAULT_AT=N:RV` gives
//!   one plan for the whole process (for a child process such as the `ukey` CLI). `MODE`:
//!   - absent: the module refuses call `N` (it does not reach the real module);
//!   - `after`: call `N` is done by the real module and then reported failed (a token that made
//!     the objects and lost the answer, e.g. pulled during `C_GenerateKeyPair`);
//!   - `gone`: call `N` and every later call fail (a token pulled for good); `C_CloseSession`,
//!     `C_CloseAllSessions` and `C_Finalize` still reach the real module, as a pulled token's
//!     sessions end with it;
//! - `UKEY_P11_FAULT_TRACE`: a file to which `GEN N FUNCTION` is appended for every call, so a
//!   test learns how many calls an operation makes and which call each number is.
//!
//! A refused call does not reach the real module, except for `C_Finalize`, which is forwarded
//! before the error is returned so the real module's state does not leak into the next plan.
#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::ffi::c_void;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use cryptoki_sys::*;

const DEFAULT_REAL: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The real module: the library stays loaded for the life of the process.
struct Real {
    _library: libloading::Library,
    list: CK_FUNCTION_LIST,
}

// SAFETY: the function list is a table of function pointers into a library that is never
// unloaded; PKCS#11 modules initialised with OS locking are callable from any thread.
unsafe impl Send for Real {}
unsafe impl Sync for Real {}

static REAL: OnceLock<Option<Real>> = OnceLock::new();

fn real() -> Option<&'static CK_FUNCTION_LIST> {
    REAL.get_or_init(|| {
        let path = std::env::var("UKEY_P11_FAULT_REAL").unwrap_or_else(|_| DEFAULT_REAL.to_string());
        // SAFETY: loading a PKCS#11 module runs its initialisers, which is what loading it means.
        let library = unsafe { libloading::Library::new(&path) }.ok()?;
        // SAFETY: C_GetFunctionList has this signature in every PKCS#11 module.
        let get: libloading::Symbol<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
            unsafe { library.get(b"C_GetFunctionList\0") }.ok()?;
        let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
        // SAFETY: writes one pointer to a table owned by the library.
        if unsafe { get(&mut list) } != CKR_OK || list.is_null() {
            return None;
        }
        // SAFETY: non-null, points to the module's static table.
        let list = unsafe { *list };
        Some(Real { _library: library, list })
    })
    .as_ref()
    .map(|r| &r.list)
}

/// Calls counted under the current plan.
struct Counter {
    generation: String,
    calls: u64,
}

static COUNTER: Mutex<Counter> = Mutex::new(Counter { generation: String::new(), calls: 0 });

/// How a planned fault behaves (see the module comment).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Refuse,
    After,
    Gone,
}

/// A fault to report for one call.
#[derive(Clone, Copy)]
struct Fault {
    rv: CK_RV,
    /// The real module still does the call (its result is replaced by `rv`).
    forward: bool,
}

/// The plan in force: (generation, N, RV, mode).
fn plan() -> (String, u64, CK_RV, Mode) {
    let text = match std::env::var_os("UKEY_P11_FAULT_PLAN") {
        Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
        None => {
            std::env::var("UKEY_P11_FAULT_AT").map(|at| format!("env {}", at.replace(':', " "))).unwrap_or_default()
        }
    };
    let mut parts = text.split_whitespace();
    let generation = parts.next().unwrap_or_default().to_string();
    let nth = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let rv = parts
        .next()
        .and_then(|r| match r.strip_prefix("0x") {
            Some(hex) => CK_RV::from_str_radix(hex, 16).ok(),
            None => r.parse().ok(),
        })
        .unwrap_or(CKR_OK);
    let mode = match parts.next() {
        Some("after") => Mode::After,
        Some("gone") => Mode::Gone,
        _ => Mode::Refuse,
    };
    (generation, nth, rv, mode)
}

/// Counts a call to `function`; returns the fault to report, if this call is planned to fail.
fn fault(function: &str) -> Option<Fault> {
    let (generation, nth, rv, mode) = plan();
    let mut counter = COUNTER.lock().unwrap_or_else(|p| p.into_inner());
    if counter.generation != generation {
        counter.generation = generation.clone();
        counter.calls = 0;
    }
    counter.calls += 1;
    let n = counter.calls;
    drop(counter);
    if let Some(path) = std::env::var_os("UKEY_P11_FAULT_TRACE")
        && let Ok(mut file) = OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(file, "{generation} {n} {function}");
    }
    if nth == 0 || rv == CKR_OK {
        return None;
    }
    let releases = matches!(function, "C_Finalize" | "C_CloseSession" | "C_CloseAllSessions");
    match mode {
        Mode::Refuse if n == nth => Some(Fault { rv, forward: function == "C_Finalize" }),
        Mode::After if n == nth => Some(Fault { rv, forward: true }),
        Mode::Gone if n >= nth => Some(Fault { rv, forward: releases }),
        _ => None,
    }
}

macro_rules! wrap {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
                let injected = fault(stringify!($name));
                if let Some(Fault { rv, forward: false }) = injected {
                    return rv;
                }
                let forwarded = match real().and_then(|list| list.$name) {
                    // SAFETY: the arguments are the caller's, passed on unchanged to the real module.
                    Some(function) => unsafe { function($($arg),*) },
                    None => CKR_FUNCTION_NOT_SUPPORTED,
                };
                injected.map_or(forwarded, |f| f.rv)
            }
        )*

        /// The real module's table with every function it has replaced by its wrapper.
        fn wrapped(real: &CK_FUNCTION_LIST) -> CK_FUNCTION_LIST {
            let mut list = *real;
            list.version = CK_VERSION { major: 2, minor: 40 };
            list.C_GetFunctionList = Some(C_GetFunctionList);
            $( if real.$name.is_some() { list.$name = Some($name); } )*
            list
        }
    };
}

wrap! {
    C_Initialize(arg1: *mut c_void);
    C_Finalize(arg1: *mut c_void);
    C_GetInfo(arg1: *mut CK_INFO);
    C_GetSlotList(arg1: CK_BBOOL, arg2: *mut CK_SLOT_ID, arg3: *mut CK_ULONG);
    C_GetSlotInfo(arg1: CK_SLOT_ID, arg2: *mut CK_SLOT_INFO);
    C_GetTokenInfo(arg1: CK_SLOT_ID, arg2: *mut CK_TOKEN_INFO);
    C_GetMechanismList(arg1: CK_SLOT_ID, arg2: *mut CK_MECHANISM_TYPE, arg3: *mut CK_ULONG);
    C_GetMechanismInfo(arg1: CK_SLOT_ID, arg2: CK_MECHANISM_TYPE, arg3: *mut CK_MECHANISM_INFO);
    C_InitToken(arg1: CK_SLOT_ID, arg2: *mut CK_UTF8CHAR, arg3: CK_ULONG, arg4: *mut CK_UTF8CHAR);
    C_InitPIN(arg1: CK_SESSION_HANDLE, arg2: *mut CK_UTF8CHAR, arg3: CK_ULONG);
    C_SetPIN(arg1: CK_SESSION_HANDLE, arg2: *mut CK_UTF8CHAR, arg3: CK_ULONG, arg4: *mut CK_UTF8CHAR, arg5: CK_ULONG);
    C_OpenSession(arg1: CK_SLOT_ID, arg2: CK_FLAGS, arg3: *mut c_void, arg4: CK_NOTIFY, arg5: *mut CK_SESSION_HANDLE);
    C_CloseSession(arg1: CK_SESSION_HANDLE);
    C_CloseAllSessions(arg1: CK_SLOT_ID);
    C_GetSessionInfo(arg1: CK_SESSION_HANDLE, arg2: *mut CK_SESSION_INFO);
    C_GetOperationState(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: *mut CK_ULONG);
    C_SetOperationState(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: CK_OBJECT_HANDLE, arg5: CK_OBJECT_HANDLE);
    C_Login(arg1: CK_SESSION_HANDLE, arg2: CK_USER_TYPE, arg3: *mut CK_UTF8CHAR, arg4: CK_ULONG);
    C_Logout(arg1: CK_SESSION_HANDLE);
    C_CreateObject(arg1: CK_SESSION_HANDLE, arg2: *mut CK_ATTRIBUTE, arg3: CK_ULONG, arg4: *mut CK_OBJECT_HANDLE);
    C_CopyObject(arg1: CK_SESSION_HANDLE, arg2: CK_OBJECT_HANDLE, arg3: *mut CK_ATTRIBUTE, arg4: CK_ULONG, arg5: *mut CK_OBJECT_HANDLE);
    C_DestroyObject(arg1: CK_SESSION_HANDLE, arg2: CK_OBJECT_HANDLE);
    C_GetObjectSize(arg1: CK_SESSION_HANDLE, arg2: CK_OBJECT_HANDLE, arg3: *mut CK_ULONG);
    C_GetAttributeValue(arg1: CK_SESSION_HANDLE, arg2: CK_OBJECT_HANDLE, arg3: *mut CK_ATTRIBUTE, arg4: CK_ULONG);
    C_SetAttributeValue(arg1: CK_SESSION_HANDLE, arg2: CK_OBJECT_HANDLE, arg3: *mut CK_ATTRIBUTE, arg4: CK_ULONG);
    C_FindObjectsInit(arg1: CK_SESSION_HANDLE, arg2: *mut CK_ATTRIBUTE, arg3: CK_ULONG);
    C_FindObjects(arg1: CK_SESSION_HANDLE, arg2: *mut CK_OBJECT_HANDLE, arg3: CK_ULONG, arg4: *mut CK_ULONG);
    C_FindObjectsFinal(arg1: CK_SESSION_HANDLE);
    C_EncryptInit(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_Encrypt(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_EncryptUpdate(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_EncryptFinal(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: *mut CK_ULONG);
    C_DecryptInit(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_Decrypt(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_DecryptUpdate(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_DecryptFinal(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: *mut CK_ULONG);
    C_DigestInit(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM);
    C_Digest(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_DigestUpdate(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG);
    C_DigestKey(arg1: CK_SESSION_HANDLE, arg2: CK_OBJECT_HANDLE);
    C_DigestFinal(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: *mut CK_ULONG);
    C_SignInit(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_Sign(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_SignUpdate(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG);
    C_SignFinal(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: *mut CK_ULONG);
    C_SignRecoverInit(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_SignRecover(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_VerifyInit(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_Verify(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG);
    C_VerifyUpdate(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG);
    C_VerifyFinal(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG);
    C_VerifyRecoverInit(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_VerifyRecover(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_DigestEncryptUpdate(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_DecryptDigestUpdate(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_SignEncryptUpdate(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_DecryptVerifyUpdate(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_GenerateKey(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: *mut CK_ATTRIBUTE, arg4: CK_ULONG, arg5: *mut CK_OBJECT_HANDLE);
    C_GenerateKeyPair(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: *mut CK_ATTRIBUTE, arg4: CK_ULONG, arg5: *mut CK_ATTRIBUTE, arg6: CK_ULONG, arg7: *mut CK_OBJECT_HANDLE, arg8: *mut CK_OBJECT_HANDLE);
    C_WrapKey(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE, arg4: CK_OBJECT_HANDLE, arg5: *mut CK_BYTE, arg6: *mut CK_ULONG);
    C_UnwrapKey(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE, arg4: *mut CK_BYTE, arg5: CK_ULONG, arg6: *mut CK_ATTRIBUTE, arg7: CK_ULONG, arg8: *mut CK_OBJECT_HANDLE);
    C_DeriveKey(arg1: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE, arg4: *mut CK_ATTRIBUTE, arg5: CK_ULONG, arg6: *mut CK_OBJECT_HANDLE);
    C_SeedRandom(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG);
    C_GenerateRandom(arg1: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG);
    C_GetFunctionStatus(arg1: CK_SESSION_HANDLE);
    C_CancelFunction(arg1: CK_SESSION_HANDLE);
    C_WaitForSlotEvent(arg1: CK_FLAGS, arg2: *mut CK_SLOT_ID, arg3: *mut c_void);
}

/// The table handed out, padded to the size of a 3.2 table because some clients copy that much.
struct Table(CK_FUNCTION_LIST_3_2);
// SAFETY: a table of function pointers, written once and only read afterwards.
unsafe impl Send for Table {}
unsafe impl Sync for Table {}

static TABLE: OnceLock<Option<Box<Table>>> = OnceLock::new();

/// The module's only exported symbol (a PKCS#11 2.40 module).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(out: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    if out.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let table = TABLE.get_or_init(|| {
        let list = wrapped(real()?);
        // SAFETY: CK_FUNCTION_LIST_3_2 starts with the fields of CK_FUNCTION_LIST; the rest is
        // zero (no such functions), which is a valid `None` for every function pointer.
        let mut padded: CK_FUNCTION_LIST_3_2 = unsafe { std::mem::zeroed() };
        // SAFETY: the destination is larger than the source and both are plain data.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&list as *const CK_FUNCTION_LIST).cast::<u8>(),
                (&mut padded as *mut CK_FUNCTION_LIST_3_2).cast::<u8>(),
                std::mem::size_of::<CK_FUNCTION_LIST>(),
            );
        }
        Some(Box::new(Table(padded)))
    });
    match table {
        Some(table) => {
            // SAFETY: `out` is non-null; the table lives for the rest of the process.
            unsafe { *out = (&table.0 as *const CK_FUNCTION_LIST_3_2).cast_mut().cast::<CK_FUNCTION_LIST>() };
            CKR_OK
        }
        None => CKR_GENERAL_ERROR,
    }
}
