//! Random bytes from the operating system, with an error a person can act on.

use ukey_api::{Error, Result};

/// Fills a fixed-size array from the OS random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)
        .map_err(|e| Error::Crypto(format!("the operating system's random source failed ({e}); check /dev/urandom")))?;
    Ok(out)
}

/// A random serial number: 16 upper-case hex digits, printable in any UI and file name.
pub fn random_serial() -> Result<String> {
    Ok(hex::encode_upper(random_bytes::<8>()?))
}
