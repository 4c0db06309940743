//! Raw PKCS#11 calls for vendor numbers cryptoki cannot express.
//!
//! cryptoki builds mechanisms and key types only from values it knows or from values at or above
//! `CKM_VENDOR_DEFINED`; some Chinese modules use SM2 numbers below that range (the MsSince MK-1
//! header uses `0x00010002`), and cryptoki drops unknown mechanism values from
//! `C_GetMechanismList` altogether. Vendor SM2 therefore goes through these few calls on the
//! module's own function list, for every vendor value alike, so the one path is the tested path.
//! This is the only `unsafe` in the crate: each block is a single FFI call whose pointers point
//! into live Rust buffers for the duration of the call.

use std::path::Path;
use std::ptr;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, Rv};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki_sys::{
    CK_ATTRIBUTE, CK_FUNCTION_LIST, CK_MECHANISM, CK_MECHANISM_INFO, CK_OBJECT_HANDLE, CK_ULONG,
    CK_UNAVAILABLE_INFORMATION, CKA_KEY_TYPE,
};

/// A module's PKCS#11 2.x function list, copied out of the library, beside the library handle
/// that keeps its code mapped.
pub struct RawModule {
    _library: cryptoki_sys::Pkcs11,
    functions: CK_FUNCTION_LIST,
}

impl std::fmt::Debug for RawModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawModule").finish_non_exhaustive()
    }
}

/// What `C_GetMechanismInfo` says about one mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMechanismInfo {
    /// `CKF_*` flags (`CKF_SIGN`, `CKF_GENERATE_KEY_PAIR`, ...).
    pub flags: u64,
}

/// A `CK_ULONG` as the `u64` ukey stores numbers in (`CK_ULONG` is 32 bits on Windows).
#[allow(clippy::useless_conversion)]
pub fn wide(value: CK_ULONG) -> u64 {
    u64::from(value)
}

/// A `u64` as `CK_ULONG`; PKCS#11 numbers (mechanisms, key types) fit 32 bits by definition.
#[allow(clippy::unnecessary_cast)]
pub fn narrow(value: u64) -> CK_ULONG {
    value as CK_ULONG
}

fn check(rv: CK_ULONG, function: Function) -> Result<(), CkError> {
    Rv::from(rv).into_result(function)
}

impl RawModule {
    /// Opens the same library again (the dynamic loader hands back the already-loaded copy) and
    /// copies its function list. Call only after cryptoki has loaded and initialised it.
    pub fn open(path: &Path) -> Result<Self, CkError> {
        // SAFETY: loading a library runs its initialisers; this library is already loaded by
        // cryptoki, so the loader only bumps its reference count.
        let library = unsafe { cryptoki_sys::Pkcs11::new(path) }.map_err(CkError::LibraryLoading)?;
        if library.C_GetFunctionList.is_err() {
            return Err(CkError::MissingSymbol("C_GetFunctionList"));
        }
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: C_GetFunctionList exists (checked above) and writes one pointer.
        check(unsafe { library.C_GetFunctionList(&mut list) }, Function::GetFunctionList)?;
        if list.is_null() {
            return Err(CkError::NullFunctionPointer);
        }
        // SAFETY: the module returned a valid pointer to its static function list; it is copied
        // (plain function pointers and a version) and the library stays loaded with `_library`.
        let functions = unsafe { *list };
        Ok(RawModule { _library: library, functions })
    }

    /// `C_GetMechanismInfo` for any mechanism number; `None` when the token does not offer it.
    pub fn mechanism_info(&self, slot: Slot, mechanism: u64) -> Result<Option<RawMechanismInfo>, CkError> {
        let f = self.functions.C_GetMechanismInfo.ok_or(CkError::NullFunctionPointer)?;
        let mut info = CK_MECHANISM_INFO { ulMinKeySize: 0, ulMaxKeySize: 0, flags: 0 };
        // SAFETY: `info` outlives the call; the slot id and mechanism are plain integers.
        let rv = unsafe { f(narrow(slot.id()), narrow(mechanism), &mut info) };
        match Rv::from(rv) {
            Rv::Ok => Ok(Some(RawMechanismInfo { flags: wide(info.flags) })),
            Rv::Error(cryptoki::error::RvError::MechanismInvalid) => Ok(None),
            Rv::Error(e) => Err(CkError::Pkcs11(e, Function::GetMechanismInfo)),
        }
    }

    /// Reads `CKA_KEY_TYPE` as a number, whatever its value (cryptoki refuses unknown ones).
    pub fn key_type(&self, session: &Session, object: ObjectHandle) -> Result<Option<u64>, CkError> {
        let f = self.functions.C_GetAttributeValue.ok_or(CkError::NullFunctionPointer)?;
        let mut value: CK_ULONG = 0;
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_KEY_TYPE,
            pValue: (&mut value as *mut CK_ULONG).cast(),
            ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
        }];
        // SAFETY: the template points at `value`, which lives across the call and has the size
        // the template states.
        let rv = unsafe { f(session.handle(), object.handle(), template.as_mut_ptr(), 1) };
        match Rv::from(rv) {
            Rv::Ok if template[0].ulValueLen != CK_UNAVAILABLE_INFORMATION => Ok(Some(wide(value))),
            Rv::Ok
            | Rv::Error(
                cryptoki::error::RvError::AttributeTypeInvalid | cryptoki::error::RvError::AttributeSensitive,
            ) => Ok(None),
            Rv::Error(e) => Err(CkError::Pkcs11(e, Function::GetAttributeValue)),
        }
    }

    /// `C_SignInit` + `C_Sign` with any mechanism number and an optional byte parameter.
    pub fn sign(
        &self,
        session: &Session,
        mechanism: u64,
        parameter: Option<&[u8]>,
        key: ObjectHandle,
        data: &[u8],
        expected_len: Option<usize>,
    ) -> Result<Vec<u8>, CkError> {
        let init = self.functions.C_SignInit.ok_or(CkError::NullFunctionPointer)?;
        let sign = self.functions.C_Sign.ok_or(CkError::NullFunctionPointer)?;
        let mut param = parameter.map(<[u8]>::to_vec).unwrap_or_default();
        let mut mech = CK_MECHANISM {
            mechanism: narrow(mechanism),
            pParameter: if param.is_empty() { ptr::null_mut() } else { param.as_mut_ptr().cast() },
            ulParameterLen: param.len() as CK_ULONG,
        };
        // SAFETY: `mech` and `param` live across the call.
        check(unsafe { init(session.handle(), &mut mech, key.handle()) }, Function::SignInit)?;
        self.finish_sign(session, sign, data, expected_len)
    }

    /// Completes a signature after `C_SignInit` (possibly followed by a context-specific login).
    ///
    /// With `expected_len` (the largest signature the key can make, known from the key) the
    /// first `C_Sign` already carries a buffer of that size, so a signature is one call instead
    /// of a length query plus the call. A module that still wants more answers
    /// `CKR_BUFFER_TOO_SMALL` with the length it needs, which by the standard leaves the
    /// operation active; the second call then uses that length.
    fn finish_sign(
        &self,
        session: &Session,
        sign: unsafe extern "C" fn(CK_ULONG, *mut u8, CK_ULONG, *mut u8, *mut CK_ULONG) -> CK_ULONG,
        data: &[u8],
        expected_len: Option<usize>,
    ) -> Result<Vec<u8>, CkError> {
        let mut input = data.to_vec();
        let mut len: CK_ULONG = 0;
        if let Some(expected) = expected_len.filter(|n| *n > 0) {
            let mut out = vec![0u8; expected];
            len = expected as CK_ULONG;
            // SAFETY: `out` is `len` bytes long and the data buffer is `input`; both live across
            // the call.
            let rv = unsafe {
                sign(session.handle(), input.as_mut_ptr(), input.len() as CK_ULONG, out.as_mut_ptr(), &mut len)
            };
            match Rv::from(rv) {
                Rv::Ok => {
                    out.truncate(usize::try_from(len).map_err(CkError::TryFromInt)?.min(expected));
                    return Ok(out);
                }
                // `len` now holds the length the module needs; the operation is still active.
                Rv::Error(cryptoki::error::RvError::BufferTooSmall) => {}
                Rv::Error(e) => return Err(CkError::Pkcs11(e, Function::Sign)),
            }
        } else {
            // SAFETY: a length query: the data buffer lives across the call, no output buffer.
            check(
                unsafe {
                    sign(session.handle(), input.as_mut_ptr(), input.len() as CK_ULONG, ptr::null_mut(), &mut len)
                },
                Function::Sign,
            )?;
        }
        let mut out = vec![0u8; usize::try_from(len).map_err(CkError::TryFromInt)?];
        // SAFETY: `out` has the length the module asked for; both buffers live across the call.
        check(
            unsafe { sign(session.handle(), input.as_mut_ptr(), input.len() as CK_ULONG, out.as_mut_ptr(), &mut len) },
            Function::Sign,
        )?;
        out.truncate(usize::try_from(len).map_err(CkError::TryFromInt)?);
        Ok(out)
    }

    /// `C_SignInit` only, for keys that need a context-specific login between init and sign.
    pub fn sign_init(
        &self,
        session: &Session,
        mechanism: u64,
        parameter: Option<&[u8]>,
        key: ObjectHandle,
    ) -> Result<(), CkError> {
        let init = self.functions.C_SignInit.ok_or(CkError::NullFunctionPointer)?;
        let mut param = parameter.map(<[u8]>::to_vec).unwrap_or_default();
        let mut mech = CK_MECHANISM {
            mechanism: narrow(mechanism),
            pParameter: if param.is_empty() { ptr::null_mut() } else { param.as_mut_ptr().cast() },
            ulParameterLen: param.len() as CK_ULONG,
        };
        // SAFETY: `mech` and `param` live across the call.
        check(unsafe { init(session.handle(), &mut mech, key.handle()) }, Function::SignInit)
    }

    /// `C_Sign` after [`RawModule::sign_init`].
    pub fn sign_after_init(
        &self,
        session: &Session,
        data: &[u8],
        expected_len: Option<usize>,
    ) -> Result<Vec<u8>, CkError> {
        let sign = self.functions.C_Sign.ok_or(CkError::NullFunctionPointer)?;
        self.finish_sign(session, sign, data, expected_len)
    }

    /// `C_GenerateKeyPair` with any mechanism number; templates are cryptoki attributes (vendor
    /// key types go in as `Attribute::VendorDefined` with the raw `CKA_KEY_TYPE` bytes).
    pub fn generate_key_pair(
        &self,
        session: &Session,
        mechanism: u64,
        public: &[Attribute],
        private: &[Attribute],
    ) -> Result<(ObjectHandle, ObjectHandle), CkError> {
        let f = self.functions.C_GenerateKeyPair.ok_or(CkError::NullFunctionPointer)?;
        let mut mech = CK_MECHANISM { mechanism: narrow(mechanism), pParameter: ptr::null_mut(), ulParameterLen: 0 };
        let mut public_template: Vec<CK_ATTRIBUTE> = public.iter().map(CK_ATTRIBUTE::from).collect();
        let mut private_template: Vec<CK_ATTRIBUTE> = private.iter().map(CK_ATTRIBUTE::from).collect();
        let mut public_handle: CK_OBJECT_HANDLE = 0;
        let mut private_handle: CK_OBJECT_HANDLE = 0;
        // SAFETY: the templates point into `public` / `private`, borrowed for the whole call; the
        // handle outputs are plain integers.
        check(
            unsafe {
                f(
                    session.handle(),
                    &mut mech,
                    public_template.as_mut_ptr(),
                    public_template.len() as CK_ULONG,
                    private_template.as_mut_ptr(),
                    private_template.len() as CK_ULONG,
                    &mut public_handle,
                    &mut private_handle,
                )
            },
            Function::GenerateKeyPair,
        )?;
        Ok((handle(public_handle), handle(private_handle)))
    }
}

/// Wraps a handle the module just returned from `C_GenerateKeyPair`.
fn handle(raw: CK_OBJECT_HANDLE) -> ObjectHandle {
    // SAFETY: the value comes straight from the module for an object it just created.
    unsafe { ObjectHandle::new_from_raw(raw) }
}
