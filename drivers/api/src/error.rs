//! The one error type of the carrier contract.
//!
//! Every variant is something a person can act on, and its message says what went wrong and what
//! to do next. Drivers map their native codes (CK_RV, SW1SW2, HID and I/O errors) onto these in
//! one place each. No variant ever carries a PIN or key material.

use std::path::PathBuf;

use crate::pin::PinRole;

/// Result of every contract operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to a carrier, phrased for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The PIN was wrong; the carrier counted a failed try.
    #[error("{}", wrong_pin_message(*role, *retries_left, detail.as_deref()))]
    WrongPin {
        /// Which PIN was presented.
        role: PinRole,
        /// Tries left before the PIN locks, when the carrier says.
        retries_left: Option<u32>,
        /// Extra state the carrier reported (for example PKCS#11 PIN flags), for the helpdesk.
        detail: Option<String>,
    },

    /// The PIN is blocked; it no longer accepts any value, even the right one.
    #[error("{}", locked_message(*role))]
    PinLocked {
        /// Which PIN is blocked.
        role: PinRole,
    },

    /// The carrier refuses to use the PIN until it is changed (it is still the default, or an
    /// administrator reset it).
    #[error("the {role} must be changed before it can be used: run `ukey pin change`")]
    PinMustChange {
        /// Which PIN must change.
        role: PinRole,
    },

    /// A PIN value was refused before it reached the carrier (empty, too short, too long, bad
    /// characters). The message names the rule, never the value.
    #[error("PIN not accepted: {0}")]
    PinRejected(String),

    /// The operation needs a login that was not given.
    #[error("this operation needs the {0}; supply it and try again")]
    LoginRequired(PinRole),

    /// The carrier was removed (or its module says the token is gone) during the operation.
    #[error("the carrier was removed; insert it again and retry")]
    TokenRemoved,

    /// The carrier or driver cannot do this; the message lists what it can do.
    #[error("not supported: {0}")]
    NotSupported(String),

    /// No carrier, key, certificate or object matches.
    #[error("not found: {0}")]
    NotFound(String),

    /// More than one object matches a name; the person must choose one.
    #[error("{what} matches {} objects ({}); name one by its PKCS#11 URI or id", candidates.len(), candidates.join(", "))]
    Ambiguous {
        /// What was looked up.
        what: String,
        /// How to name each match unambiguously.
        candidates: Vec<String>,
    },

    /// Another operation holds the carrier; retry later.
    #[error("the carrier is busy: {0}; try again in a moment")]
    Busy(String),

    /// The person cancelled (PIN dialog closed, confirmation refused).
    #[error("cancelled by the user")]
    Cancelled,

    /// The carrier or a peer did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),

    /// The caller's input is wrong; the message says what is expected.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// Access to a device or file was refused by the operating system.
    #[error("permission denied: {0}")]
    PermissionDenied(String),

    /// A stored file is damaged; it was left untouched.
    #[error("{}: {reason}; the file was left untouched — restore it from a backup or re-initialise the token", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An operating-system I/O error, with what ukey was doing.
    #[error("{context}: {source}")]
    Io {
        /// What ukey was doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The carrier answered with an error ukey has no better name for (native code included).
    #[error("device error: {0}")]
    Device(String),

    /// A cryptographic check or operation failed (bad signature, malformed key).
    #[error("cryptographic error: {0}")]
    Crypto(String),

    /// The custody policy refused the use (the message names the carrier's holder and the
    /// reason), or the use could not be put on record in the audit log. Raised by the `ukey`
    /// crate's gate around carriers, never by a driver.
    #[error("{0}")]
    Refused(String),
}

impl Error {
    /// A stable machine-readable name for the variant, used by JSON-RPC error data and the JS
    /// client's typed errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::WrongPin { .. } => "WrongPin",
            Error::PinLocked { .. } => "PinLocked",
            Error::PinMustChange { .. } => "PinMustChange",
            Error::PinRejected(_) => "PinRejected",
            Error::LoginRequired(_) => "LoginRequired",
            Error::TokenRemoved => "TokenRemoved",
            Error::NotSupported(_) => "NotSupported",
            Error::NotFound(_) => "NotFound",
            Error::Ambiguous { .. } => "Ambiguous",
            Error::Busy(_) => "Busy",
            Error::Cancelled => "Cancelled",
            Error::Timeout(_) => "Timeout",
            Error::InvalidInput(_) => "InvalidInput",
            Error::PermissionDenied(_) => "PermissionDenied",
            Error::Corrupt { .. } => "Corrupt",
            Error::Io { .. } => "Io",
            Error::Device(_) => "Device",
            Error::Crypto(_) => "Crypto",
            Error::Refused(_) => "PolicyDenied",
        }
    }

    /// Wraps an I/O error with what ukey was doing when it happened.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

fn wrong_pin_message(role: PinRole, retries_left: Option<u32>, detail: Option<&str>) -> String {
    let mut msg = format!("wrong {role}");
    match retries_left {
        Some(0) => msg.push_str("; no tries left, the PIN is now locked"),
        Some(1) => msg.push_str("; 1 try left before the PIN locks — be careful"),
        Some(n) => msg.push_str(&format!("; {n} tries left before the PIN locks")),
        None => msg.push_str("; the carrier does not say how many tries are left"),
    }
    if let Some(d) = detail {
        msg.push_str(&format!(" ({d})"));
    }
    msg
}

fn locked_message(role: PinRole) -> String {
    match role {
        PinRole::User => "the user PIN is locked; the helpdesk can unblock it with the SO PIN or PUK (`ukey pin unblock`)".into(),
        PinRole::So => "the SO PIN / PUK is locked; only re-initialising the carrier (`ukey token init`) remains, which erases its keys".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_pin_says_tries_left() {
        let e = Error::WrongPin { role: PinRole::User, retries_left: Some(3), detail: None };
        assert_eq!(e.to_string(), "wrong user PIN; 3 tries left before the PIN locks");
        assert_eq!(e.kind(), "WrongPin");
    }

    #[test]
    fn locked_pin_says_how_to_unblock() {
        let e = Error::PinLocked { role: PinRole::User };
        assert!(e.to_string().contains("ukey pin unblock"));
    }
}
