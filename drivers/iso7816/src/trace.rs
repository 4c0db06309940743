//! APDU trace logging (at `trace` level of the `ukey_iso7816::apdu` target) that never shows a
//! PIN: the data of VERIFY (`20`), CHANGE REFERENCE DATA (`24`) and RESET RETRY COUNTER (`2C`) is
//! replaced by its length, in every link of a command chain.

/// Log target of APDU traces, so they can be switched on alone (`RUST_LOG=ukey_iso7816::apdu=trace`).
pub const TARGET: &str = "ukey_iso7816::apdu";

/// Instructions whose data field carries a PIN, PUK or other reference data.
const SECRET_INS: [u8; 3] = [0x20, 0x24, 0x2C];

/// Whether the data of a command with this INS must never be logged.
pub fn is_secret_ins(ins: u8) -> bool {
    SECRET_INS.contains(&ins)
}

/// The printable form of a command APDU: header and lengths in hex, secret data redacted.
pub fn format_command(apdu: &[u8]) -> String {
    let ins = apdu.get(1).copied().unwrap_or(0);
    if is_secret_ins(ins) && apdu.len() > 5 {
        let header = apdu.get(..4).map(hex::encode_upper).unwrap_or_default();
        format!("{header} <{} bytes redacted>", apdu.len() - 4)
    } else {
        hex::encode_upper(apdu)
    }
}

/// The printable form of a response APDU.
pub fn format_response(raw: &[u8]) -> String {
    hex::encode_upper(raw)
}

/// Logs a command about to be sent.
pub fn command(apdu: &[u8]) {
    if log::log_enabled!(target: TARGET, log::Level::Trace) {
        log::trace!(target: TARGET, "> {}", format_command(apdu));
    }
}

/// Logs a response received.
pub fn response(raw: &[u8]) {
    if log::log_enabled!(target: TARGET, log::Level::Trace) {
        log::trace!(target: TARGET, "< {}", format_response(raw));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_redacted() {
        let verify = [0x00, 0x20, 0x00, 0x80, 0x08, b'1', b'2', b'3', b'4', b'5', b'6', 0xFF, 0xFF];
        let text = format_command(&verify);
        assert_eq!(text, "00200080 <9 bytes redacted>");
        assert!(!text.contains("31"));
        // A chained CHANGE REFERENCE DATA link (CLA 10) is redacted too.
        let link = [0x10, 0x24, 0x00, 0x80, 0x02, 0x39, 0x39];
        assert!(!format_command(&link).contains("3939"));
        let rrc = [0x00, 0x2C, 0x00, 0x80, 0x01, 0x37];
        assert!(format_command(&rrc).contains("redacted"));
        // The empty VERIFY that asks for retries has nothing to hide.
        assert_eq!(format_command(&[0x00, 0x20, 0x00, 0x80]), "00200080");
        assert_eq!(format_command(&[0x00, 0xCB, 0x3F, 0xFF]), "00CB3FFF");
    }
}
