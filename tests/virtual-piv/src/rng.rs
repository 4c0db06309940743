//! The card's random source: the operating system's, through getrandom.

use rand_core::UnwrapErr;

/// A cryptographically secure RNG usable where RustCrypto wants `CryptoRng`.
pub(crate) fn system() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

/// Random bytes for challenges, witnesses and GUIDs.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS RNG failing is not something a test fixture can recover from; an all-zero
    // challenge would still make authentication fail closed rather than pass.
    if let Err(err) = getrandom::fill(&mut out) {
        log::error!("system RNG failed: {err}");
    }
    out
}

/// Random bytes of a runtime length.
pub(crate) fn vec(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    if let Err(err) = getrandom::fill(&mut out) {
        log::error!("system RNG failed: {err}");
    }
    out
}
