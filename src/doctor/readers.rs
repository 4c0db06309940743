//! Which smart card readers does pcscd see (a CCID token is a reader with a card in it)?

use std::ffi::CString;

use super::pcscd::START_HINT;
use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "readers";

/// The readers pcscd knows, or why they cannot be listed.
pub fn list() -> Result<(pcsc::Context, Vec<CString>), String> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(|e| format!("cannot reach pcscd: {e}"))?;
    match ctx.list_readers_owned() {
        Ok(readers) => Ok((ctx, readers)),
        Err(pcsc::Error::NoReadersAvailable) => Ok((ctx, Vec::new())),
        Err(e) => Err(format!("pcscd did not list its readers: {e}")),
    }
}

/// Lists the readers, and says which ones `UKEY_PCSC_READERS` hides from ukey.
pub fn check(_env: &Environment<'_>) -> Vec<Finding> {
    let readers = match list() {
        Ok((_, readers)) => readers,
        Err(why) => {
            return vec![Finding::fail(ID, format!("{why}; no smart card reader can be used"), START_HINT)];
        }
    };
    if readers.is_empty() {
        return vec![Finding::warn(
            ID,
            "pcscd is running but sees no smart card reader (a USB token that works as a smart card is a reader too)",
            "plug in the reader or the key; for USB CCID devices install the driver (`sudo apt install libccid`); \
             `pcsc_scan` (package pcsc-tools) shows what pcscd sees",
        )];
    }
    let names: Vec<String> = readers.iter().map(|r| r.to_string_lossy().into_owned()).collect();
    let mut out = vec![Finding::ok(ID, format!("pcscd sees {} reader(s): {}", names.len(), names.join(", ")))];
    for reader in &readers {
        if !ukey_pcsc::driver::reader_allowed(reader) {
            let name = reader.to_string_lossy().into_owned();
            out.push(
                Finding::warn(
                    ID,
                    format!("ukey ignores reader {name}: {} leaves it out", ukey_pcsc::driver::ENV_READERS),
                    format!("unset {} or add part of this reader's name to it", ukey_pcsc::driver::ENV_READERS),
                )
                .about(name),
            );
        }
    }
    out
}
