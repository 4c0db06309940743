//! A deliberately broken PKCS#11 module, for ukey's tests only.
//!
//! It stands for a hung vendor module: OpenSC 0.23's `opensc-pkcs11.so` intermittently deadlocks
//! in its own `C_Initialize` on our test rig (its card mutex, while binding a virtual PIV card;
//! see /work/notes/issue-3.md). That hang cannot be produced on demand, so this module does it
//! every time: `C_GetFunctionList` works, `C_Initialize` never returns. Every other entry of the
//! function list is absent (null). It is the one test double in the PKCS#11 tests; everything
//! else they load is the real SoftHSM2.
//!
//! Built by the tests themselves with `rustc --crate-type cdylib` (tests/hung_module/mod.rs).

#![allow(non_snake_case)]

use std::ffi::c_void;
use std::os::raw::c_ulong;

type Rv = c_ulong;
type Absent = Option<unsafe extern "C" fn()>;

/// `CK_FUNCTION_LIST` of PKCS#11 2.40: a version and 68 function pointers.
#[repr(C)]
pub struct FunctionList {
    version: [u8; 2],
    initialize: Option<unsafe extern "C" fn(*mut c_void) -> Rv>,
    others: [Absent; 67],
}

static LIST: FunctionList = FunctionList { version: [2, 40], initialize: Some(C_Initialize), others: [None; 67] };

/// Never returns, like a module deadlocked on its own mutex.
///
/// # Safety
/// Called by a PKCS#11 application; the argument is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Initialize(_args: *mut c_void) -> Rv {
    loop {
        std::thread::park();
    }
}

/// Hands out the function list, as every PKCS#11 module does.
///
/// # Safety
/// `list` must be a valid pointer to write one pointer to.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *const FunctionList) -> Rv {
    if list.is_null() {
        return 7; // CKR_ARGUMENTS_BAD
    }
    unsafe { *list = &LIST };
    0
}
