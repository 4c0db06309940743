//! The PKCS#11 functions the module implements, as C sees them: each checks and converts its
//! arguments, calls the safe function of its group, and writes the results back.

use std::ffi::c_void;

use cryptoki_sys::*;
use zeroize::Zeroize;

use ukey_api::Pin;

use super::marshal::{bytes, get, put, put_bytes, put_list, template};
use super::{guard, rv};
use crate::object::{AttributeAnswer, AttributeRequest};
use crate::sign::SignOutput;
use crate::{events, general, login, object, session, sign, slot_token, unsupported};

/// `C_Initialize`.
///
/// # Safety
/// `init_args` is NULL or points to a `CK_C_INITIALIZE_ARGS`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Initialize(init_args: *mut c_void) -> CK_RV {
    guard("C_Initialize", || {
        let args = if init_args.is_null() {
            None
        } else {
            // SAFETY: non-NULL; the program passes a CK_C_INITIALIZE_ARGS.
            let a: CK_C_INITIALIZE_ARGS = match unsafe { get(init_args as *const CK_C_INITIALIZE_ARGS) } {
                Ok(a) => a,
                Err(e) => return e,
            };
            let callbacks =
                [a.CreateMutex.is_some(), a.DestroyMutex.is_some(), a.LockMutex.is_some(), a.UnlockMutex.is_some()];
            Some(general::InitArgs {
                os_locking_ok: a.flags & CKF_OS_LOCKING_OK != 0,
                mutex_callbacks: callbacks.iter().filter(|c| **c).count() as u8,
                reserved: !a.pReserved.is_null(),
            })
        };
        rv(general::initialize(args))
    })
}

/// `C_Finalize`.
#[unsafe(no_mangle)]
pub extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard("C_Finalize", || if reserved.is_null() { rv(general::finalize()) } else { CKR_ARGUMENTS_BAD })
}

fn fill_info(info: *mut CK_INFO, v3: bool) -> CK_RV {
    rv(general::info(v3).and_then(|i| {
        let out = CK_INFO {
            cryptokiVersion: i.cryptoki_version,
            manufacturerID: i.manufacturer,
            flags: 0,
            libraryDescription: i.description,
            libraryVersion: i.library_version,
        };
        // SAFETY: `info` is the program's CK_INFO (checked for NULL by `put`).
        unsafe { put(info, out) }
    }))
}

/// `C_GetInfo` of the PKCS#11 2.40 function list.
///
/// # Safety
/// `info` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard("C_GetInfo", || fill_info(info, false))
}

/// `C_GetInfo` of the PKCS#11 3.0 function list.
///
/// # Safety
/// `info` is NULL or writable.
pub unsafe extern "C" fn get_info_v3(info: *mut CK_INFO) -> CK_RV {
    guard("C_GetInfo", || fill_info(info, true))
}

/// `C_GetSlotList`.
///
/// # Safety
/// Pointers follow the PKCS#11 conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotList(token_present: CK_BBOOL, list: *mut CK_SLOT_ID, count: *mut CK_ULONG) -> CK_RV {
    guard("C_GetSlotList", || {
        if count.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: pointers from the program, checked inside.
        rv(slot_token::slot_list(token_present != 0).and_then(|ids| unsafe { put_list(list, count, &ids) }))
    })
}

/// `C_GetSlotInfo`.
///
/// # Safety
/// `info` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard("C_GetSlotInfo", || {
        if info.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        rv(slot_token::slot_info(slot).and_then(|i| {
            let out = CK_SLOT_INFO {
                slotDescription: i.description,
                manufacturerID: i.manufacturer,
                flags: i.flags,
                hardwareVersion: CK_VERSION { major: 0, minor: 0 },
                firmwareVersion: general::library_version(),
            };
            // SAFETY: checked non-NULL above.
            unsafe { put(info, out) }
        }))
    })
}

/// `C_GetTokenInfo`.
///
/// # Safety
/// `info` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard("C_GetTokenInfo", || {
        if info.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        rv(slot_token::token_info(slot).and_then(|t| {
            let out = CK_TOKEN_INFO {
                label: t.label,
                manufacturerID: t.manufacturer,
                model: t.model,
                serialNumber: t.serial,
                flags: t.flags,
                ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
                ulSessionCount: CK_UNAVAILABLE_INFORMATION,
                ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
                ulRwSessionCount: CK_UNAVAILABLE_INFORMATION,
                ulMaxPinLen: t.max_pin,
                ulMinPinLen: t.min_pin,
                ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
                ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
                ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
                ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
                hardwareVersion: CK_VERSION { major: 0, minor: 0 },
                firmwareVersion: CK_VERSION { major: 0, minor: 0 },
                utcTime: [b' '; 16],
            };
            // SAFETY: checked non-NULL above.
            unsafe { put(info, out) }
        }))
    })
}

/// `C_GetMechanismList`.
///
/// # Safety
/// Pointers follow the PKCS#11 conventions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetMechanismList", || {
        if count.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: pointers from the program, checked inside.
        rv(slot_token::mechanism_list(slot).and_then(|m| unsafe { put_list(list, count, &m) }))
    })
}

/// `C_GetMechanismInfo`.
///
/// # Safety
/// `info` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard("C_GetMechanismInfo", || {
        if info.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        rv(slot_token::mechanism_info(slot, mechanism).and_then(|i| {
            let out = CK_MECHANISM_INFO { ulMinKeySize: i.min_key_bits, ulMaxKeySize: i.max_key_bits, flags: i.flags };
            // SAFETY: checked non-NULL above.
            unsafe { put(info, out) }
        }))
    })
}

/// `C_OpenSession` (notification callbacks are never called: the module has no events to
/// notify through them).
///
/// # Safety
/// `session` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard("C_OpenSession", || {
        if session.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: checked non-NULL above.
        rv(session::open(slot, flags).and_then(|h| unsafe { put(session, h) }))
    })
}

/// `C_CloseSession`.
#[unsafe(no_mangle)]
pub extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CloseSession", || rv(session::close(session)))
}

/// `C_CloseAllSessions`.
#[unsafe(no_mangle)]
pub extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard("C_CloseAllSessions", || rv(session::close_all(slot)))
}

/// `C_GetSessionInfo`.
///
/// # Safety
/// `info` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetSessionInfo(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    guard("C_GetSessionInfo", || {
        if info.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        rv(session::info(session).and_then(|i| {
            let out = CK_SESSION_INFO { slotID: i.slot, state: i.state, flags: i.flags, ulDeviceError: 0 };
            // SAFETY: checked non-NULL above.
            unsafe { put(info, out) }
        }))
    })
}

/// The PIN a program passed, in zeroizing memory; `None` for NULL or empty (the agent asks).
///
/// # Safety
/// `pin` is NULL or points to `len` readable bytes.
unsafe fn read_pin(pin: *const u8, len: CK_ULONG) -> Result<Option<Pin>, CK_RV> {
    // SAFETY: forwarded from the caller's contract.
    let raw = unsafe { bytes(pin, len) }?;
    if raw.is_empty() {
        return Ok(None);
    }
    match String::from_utf8(raw.to_vec()) {
        Ok(text) => Pin::new(text).map(Some).map_err(|_| CKR_PIN_LEN_RANGE),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(CKR_PIN_INVALID)
        }
    }
}

/// `C_Login`: a NULL PIN lets the agent ask the holder (protected authentication path).
///
/// # Safety
/// `pin` is NULL or points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Login(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    guard("C_Login", || {
        // SAFETY: pointers from the program, checked inside.
        match unsafe { read_pin(pin, len) } {
            Ok(p) => rv(login::login(session, user_type, p)),
            Err(e) => e,
        }
    })
}

/// `C_LoginUser` (PKCS#11 3.0): carriers have no user names; the name is ignored.
///
/// # Safety
/// `pin` is NULL or points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_LoginUser(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
    _username: *mut CK_UTF8CHAR,
    _username_len: CK_ULONG,
) -> CK_RV {
    // SAFETY: same contract as C_Login.
    unsafe { C_Login(session, user_type, pin, len) }
}

/// `C_Logout`.
#[unsafe(no_mangle)]
pub extern "C" fn C_Logout(session: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_Logout", || rv(login::logout(session)))
}

/// `C_FindObjectsInit`.
///
/// # Safety
/// `attrs` is NULL (with `count == 0`) or points to `count` attributes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard("C_FindObjectsInit", || {
        // SAFETY: pointer from the program, checked inside.
        let t = match unsafe { template(attrs, count) } {
            Ok(t) => t,
            Err(e) => return e,
        };
        let mut wanted = Vec::with_capacity(t.len());
        for a in t.iter() {
            // SAFETY: each value points to `ulValueLen` bytes per the program's template.
            match unsafe { bytes(a.pValue as *const u8, a.ulValueLen) } {
                Ok(v) => wanted.push((a.type_, v.to_vec())),
                Err(e) => return e,
            }
        }
        rv(object::find_init(session, wanted))
    })
}

/// `C_FindObjects`.
///
/// # Safety
/// `objects` has room for `max` handles; `found` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    found: *mut CK_ULONG,
) -> CK_RV {
    guard("C_FindObjects", || {
        if objects.is_null() || found.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        rv(object::find_next(session, max).and_then(|handles| {
            // SAFETY: `objects` has room for `max >= handles.len()` handles.
            unsafe { std::ptr::copy_nonoverlapping(handles.as_ptr(), objects, handles.len()) };
            // SAFETY: checked non-NULL above.
            unsafe { put(found, handles.len() as CK_ULONG) }
        }))
    })
}

/// `C_FindObjectsFinal`.
#[unsafe(no_mangle)]
pub extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_FindObjectsFinal", || rv(object::find_final(session)))
}

/// `C_GetAttributeValue`.
///
/// # Safety
/// `attrs` points to `count` attributes whose values are NULL or have `ulValueLen` bytes of room.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    handle: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard("C_GetAttributeValue", || {
        if attrs.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: non-NULL with `count` attributes per the program.
        let t = match unsafe { template(attrs, count) } {
            Ok(t) => t,
            Err(e) => return e,
        };
        let requests: Vec<AttributeRequest> = t
            .iter()
            .map(|a| AttributeRequest {
                kind: a.type_,
                room: (!a.pValue.is_null()).then(|| usize::try_from(a.ulValueLen).unwrap_or(usize::MAX)),
            })
            .collect();
        let (answers, result) = match object::get_attributes(session, handle, &requests) {
            Ok(r) => r,
            Err(e) => return e,
        };
        for (a, answer) in t.iter_mut().zip(answers) {
            match answer {
                AttributeAnswer::Unavailable => a.ulValueLen = CK_UNAVAILABLE_INFORMATION,
                AttributeAnswer::Length(n) => a.ulValueLen = n as CK_ULONG,
                AttributeAnswer::Value(v) => {
                    // SAFETY: the safe layer checked the value fits `ulValueLen` bytes of room.
                    unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len()) };
                    a.ulValueLen = v.len() as CK_ULONG;
                }
            }
        }
        result
    })
}

/// `C_SignInit`.
///
/// # Safety
/// `mechanism` is NULL or a valid `CK_MECHANISM` whose parameter has `ulParameterLen` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignInit(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SignInit", || {
        // SAFETY: pointer from the program, checked for NULL inside.
        let m = match unsafe { get(mechanism as *const CK_MECHANISM) } {
            Ok(m) => m,
            Err(e) => return e,
        };
        // SAFETY: the parameter has `ulParameterLen` bytes per the program.
        match unsafe { bytes(m.pParameter as *const u8, m.ulParameterLen) } {
            Ok(param) => rv(sign::init(session, m.mechanism, param, key)),
            Err(e) => e,
        }
    })
}

/// Writes a sign result the PKCS#11 way.
///
/// # Safety
/// `out` is NULL or has `*out_len` bytes of room; `out_len` is writable.
unsafe fn deliver(result: Result<SignOutput, CK_RV>, out: *mut CK_BYTE, out_len: *mut CK_ULONG) -> CK_RV {
    match result {
        // SAFETY: `out_len` checked non-NULL by the callers.
        Ok(SignOutput::Length(n)) => match unsafe { put(out_len, n as CK_ULONG) } {
            Ok(()) if out.is_null() => CKR_OK,
            Ok(()) => CKR_BUFFER_TOO_SMALL,
            Err(e) => e,
        },
        // SAFETY: the safe layer produced the signature only when `*out_len` had room for it.
        Ok(SignOutput::Signature(sig)) => rv(unsafe { put_bytes(out, out_len, &sig) }),
        Err(e) => e,
    }
}

/// `C_Sign`.
///
/// # Safety
/// `data` has `len` bytes; `out` is NULL or has `*out_len` bytes of room; `out_len` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_Sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Sign", || {
        let room = if out.is_null() {
            None
        } else {
            // SAFETY: `get` checks `out_len` for NULL; otherwise it is readable per the program.
            match unsafe { get(out_len as *const CK_ULONG) } {
                Ok(r) => Some(usize::try_from(r).unwrap_or(usize::MAX)),
                Err(e) => return e,
            }
        };
        if out_len.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: `data` has `len` bytes per the program.
        let input = match unsafe { bytes(data, len) } {
            Ok(d) => d,
            Err(e) => return e,
        };
        // SAFETY: pointers checked above.
        unsafe { deliver(sign::sign(session, input, room), out, out_len) }
    })
}

/// `C_SignUpdate`.
///
/// # Safety
/// `part` has `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignUpdate(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, len: CK_ULONG) -> CK_RV {
    guard("C_SignUpdate", || {
        // SAFETY: `part` has `len` bytes per the program.
        match unsafe { bytes(part, len) } {
            Ok(d) => rv(sign::update(session, d)),
            Err(e) => e,
        }
    })
}

/// `C_SignFinal`.
///
/// # Safety
/// `out` is NULL or has `*out_len` bytes of room; `out_len` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SignFinal(session: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) -> CK_RV {
    guard("C_SignFinal", || {
        if out_len.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        let room = if out.is_null() {
            None
        } else {
            // SAFETY: checked non-NULL above.
            match unsafe { get(out_len as *const CK_ULONG) } {
                Ok(r) => Some(usize::try_from(r).unwrap_or(usize::MAX)),
                Err(e) => return e,
            }
        };
        // SAFETY: pointers checked above.
        unsafe { deliver(sign::sign_final(session, room), out, out_len) }
    })
}

/// `C_WaitForSlotEvent`.
///
/// # Safety
/// `slot` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_WaitForSlotEvent(flags: CK_FLAGS, slot: *mut CK_SLOT_ID, reserved: *mut c_void) -> CK_RV {
    guard("C_WaitForSlotEvent", || {
        if slot.is_null() || !reserved.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        // SAFETY: checked non-NULL above.
        rv(events::wait(flags).and_then(|s| unsafe { put(slot, s) }))
    })
}

/// `C_GetFunctionStatus`: a legacy function.
#[unsafe(no_mangle)]
pub extern "C" fn C_GetFunctionStatus(_session: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_GetFunctionStatus", || rv(unsupported::not_parallel()))
}

/// `C_CancelFunction`: a legacy function.
#[unsafe(no_mangle)]
pub extern "C" fn C_CancelFunction(_session: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CancelFunction", || rv(unsupported::not_parallel()))
}

/// `C_SeedRandom`: no generator is reachable.
#[unsafe(no_mangle)]
pub extern "C" fn C_SeedRandom(session: CK_SESSION_HANDLE, _seed: *mut CK_BYTE, _len: CK_ULONG) -> CK_RV {
    guard("C_SeedRandom", || rv(unsupported::no_rng(session)))
}

/// `C_GenerateRandom`: no generator is reachable.
#[unsafe(no_mangle)]
pub extern "C" fn C_GenerateRandom(session: CK_SESSION_HANDLE, _out: *mut CK_BYTE, _len: CK_ULONG) -> CK_RV {
    guard("C_GenerateRandom", || rv(unsupported::no_rng(session)))
}

/// `C_SessionCancel` (PKCS#11 3.0).
#[unsafe(no_mangle)]
pub extern "C" fn C_SessionCancel(session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    guard("C_SessionCancel", || rv(session::cancel(session, flags)))
}
