//! Pointer and length handling at the C boundary: every pointer a program passes is checked for
//! NULL before use, every buffer is read or written only within the length the program gave,
//! and output lists follow the PKCS#11 two-call convention (length query with a NULL buffer,
//! `CKR_BUFFER_TOO_SMALL` with the needed length when the buffer is short).

use cryptoki_sys::*;

use crate::rv::P11Result;

/// `len` bytes at `ptr` (a NULL pointer is only valid with a zero length).
///
/// # Safety
/// When `ptr` is not NULL it must point to `len` readable bytes that stay valid and unchanged for
/// `'a` (the duration of the PKCS#11 call).
pub unsafe fn bytes<'a>(ptr: *const u8, len: CK_ULONG) -> P11Result<&'a [u8]> {
    let len = usize::try_from(len).map_err(|_| CKR_ARGUMENTS_BAD)?;
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(CKR_ARGUMENTS_BAD) };
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes for the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Writes `value` through `out`.
///
/// # Safety
/// `out`, when not NULL, must be valid for writing one `T`.
pub unsafe fn put<T>(out: *mut T, value: T) -> P11Result<()> {
    if out.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL and writable per the caller; `write` does not read or drop the old value
    // (the program's memory may be uninitialised).
    unsafe { out.write(value) };
    Ok(())
}

/// Reads `*ptr`.
///
/// # Safety
/// `ptr`, when not NULL, must be valid for reading one `T`.
pub unsafe fn get<T: Copy>(ptr: *const T) -> P11Result<T> {
    if ptr.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL and readable per the caller; `read_unaligned` tolerates any alignment a
    // program may hand us.
    Ok(unsafe { ptr.read_unaligned() })
}

/// Hands a list of `CK_ULONG`s (slot ids, mechanisms, handles) to a program: `*count` receives
/// the length; the items are copied when `out` is not NULL and has room.
///
/// # Safety
/// `count` must be valid for reading and writing one `CK_ULONG`; `out`, when not NULL, must be
/// valid for writing `*count` items.
pub unsafe fn put_list(out: *mut CK_ULONG, count: *mut CK_ULONG, items: &[CK_ULONG]) -> P11Result<()> {
    // SAFETY: forwarded from the caller's contract.
    let room = unsafe { get(count) }?;
    let len = items.len() as CK_ULONG;
    // SAFETY: as above.
    unsafe { put(count, len) }?;
    if out.is_null() {
        return Ok(());
    }
    if room < len {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: `out` has room for `room >= len` items per the caller; the regions cannot overlap
    // (ours is a Rust vector).
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), out, items.len()) };
    Ok(())
}

/// Copies `data` to `out` (which the safe layer already checked is big enough) and sets `*len`.
///
/// # Safety
/// `out` must be valid for writing `data.len()` bytes and `len` for writing one `CK_ULONG`.
pub unsafe fn put_bytes(out: *mut u8, len: *mut CK_ULONG, data: &[u8]) -> P11Result<()> {
    if out.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: `out` has room for `data.len()` bytes per the caller; no overlap with our buffer.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), out, data.len()) };
    // SAFETY: forwarded from the caller's contract.
    unsafe { put(len, data.len() as CK_ULONG) }
}

/// The attributes of a template, as `(pointer, count)` from the program.
///
/// # Safety
/// `template`, when not NULL, must point to `count` `CK_ATTRIBUTE`s valid for the call.
pub unsafe fn template<'a>(template: *mut CK_ATTRIBUTE, count: CK_ULONG) -> P11Result<&'a mut [CK_ATTRIBUTE]> {
    let count = usize::try_from(count).map_err(|_| CKR_ARGUMENTS_BAD)?;
    if template.is_null() {
        return if count == 0 { Ok(&mut []) } else { Err(CKR_ARGUMENTS_BAD) };
    }
    // SAFETY: non-NULL with `count` elements per the caller, exclusively ours for the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(template, count) })
}
