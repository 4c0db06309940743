//! The one place where PC/SC error codes become contract errors a person can act on.

use ukey_api::Error;

/// What to tell a person when pcscd cannot be reached.
pub const PCSCD_HINT: &str = "the PC/SC service pcscd is not running; start it (`systemctl start pcscd.socket`, \
     or as root `pcscd --foreground &` where there is no systemd) and retry";

/// Maps a PC/SC error met while doing `what` onto the contract's error.
pub fn map(e: pcsc::Error, what: &str) -> Error {
    use pcsc::Error as P;
    match e {
        P::RemovedCard | P::NoSmartcard | P::UnknownReader | P::ReaderUnavailable | P::UnpoweredCard => {
            Error::TokenRemoved
        }
        P::NoService | P::ServiceStopped | P::CommError | P::NoReadersAvailable if what.is_empty() => {
            Error::Device(PCSCD_HINT.into())
        }
        P::NoService | P::ServiceStopped => Error::Device(format!("{what}: {PCSCD_HINT}")),
        // The socket to pcscd broke in the middle of the call: the daemon died.
        P::CommError => Error::Device(format!("{what}: the connection to pcscd broke (did it stop?); {PCSCD_HINT}")),
        P::NoReadersAvailable => Error::NotFound("no smart card reader is connected".into()),
        P::SharingViolation => Error::Busy(format!("{what}: another program holds the card exclusively")),
        P::Timeout => Error::Timeout(format!("{what}: the reader did not answer in time")),
        P::Cancelled => Error::Cancelled,
        P::UnresponsiveCard | P::UnsupportedCard | P::InvalidAtr | P::ProtoMismatch => {
            Error::Device(format!("{what}: the card does not respond properly ({e}); reinsert it"))
        }
        other => Error::Device(format!("{what}: PC/SC error: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_and_missing_daemon_read_well() {
        assert!(matches!(map(pcsc::Error::RemovedCard, "sign"), Error::TokenRemoved));
        assert!(matches!(map(pcsc::Error::NoSmartcard, "sign"), Error::TokenRemoved));
        let e = map(pcsc::Error::NoService, "list readers");
        assert!(e.to_string().contains("pcscd --foreground"), "{e}");
        assert!(matches!(map(pcsc::Error::SharingViolation, "x"), Error::Busy(_)));
        assert!(matches!(map(pcsc::Error::Timeout, "x"), Error::Timeout(_)));
    }
}
