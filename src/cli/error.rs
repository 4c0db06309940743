//! The CLI's errors and the exit codes scripts can rely on.
//!
//! | code | meaning                                                                 |
//! |------|-------------------------------------------------------------------------|
//! | 0    | success (for `ukey verify`: the signature is valid)                     |
//! | 1    | any other error (I/O, carrier, crypto, bad file content)                |
//! | 2    | usage: the command line is wrong (unknown flag or value, missing input) |
//! | 3    | PIN: wrong, locked, must change, rejected, or no way to ask for it      |
//! | 4    | not found or ambiguous: no such token, key or certificate, or several   |
//! | 5    | `ukey verify`: the signature does not verify; `ukey audit verify`: the  |
//! |      | audit chain is broken                                                   |
//! | 6    | refused by the custody policy (or because the use could not be audited)|

use std::process::ExitCode;

use serde::Serialize;
use ukey_api::Error;

use crate::config::ConfigError;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: an error that is none of the specific ones below.
pub const EXIT_ERROR: u8 = 1;
/// Exit code: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a PIN problem.
pub const EXIT_PIN: u8 = 3;
/// Exit code: nothing (or more than one thing) matches a name.
pub const EXIT_NOT_FOUND: u8 = 4;
/// Exit code: a signature does not verify.
pub const EXIT_BAD_SIGNATURE: u8 = 5;
/// Exit code: the custody policy refused the use, or it could not be put on record.
pub const EXIT_REFUSED: u8 = 6;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An error from a carrier or the crypto core; its message already says what to do.
    #[error(transparent)]
    Carrier(#[from] Error),

    /// The config file or a default path is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The command line is wrong; the message says what is expected.
    #[error("{0}")]
    Usage(String),

    /// A PIN is needed and there is no way to get it.
    #[error(
        "the {what} is needed, but there is no terminal to ask for it: run ukey in a terminal, pass {flag} FILE, or set {env}"
    )]
    PinUnavailable {
        /// Which PIN ("user PIN", "new user PIN", ...).
        what: String,
        /// The file flag that supplies it.
        flag: &'static str,
        /// The environment variable that supplies it.
        env: &'static str,
    },

    /// Two entries of a new PIN differ.
    #[error("the two entries of the {0} differ; nothing was changed, try again")]
    PinMismatch(String),

    /// A signature was checked and is not valid.
    #[error("signature does NOT verify: {0}")]
    BadSignature(String),

    /// The custody policy refused the use (the message names the holder and the reason), or
    /// the audit log could not record it.
    #[error("{0}")]
    Refused(String),

    /// `ukey audit verify` found the chain broken; the findings were printed.
    #[error("the audit log does NOT verify: {0}")]
    AuditBroken(String),
}

impl CliError {
    /// A stable machine-readable name, the `kind` of a `--json` error.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::Carrier(e) => e.kind(),
            CliError::Config(_) => "Config",
            CliError::Usage(_) => "Usage",
            CliError::PinUnavailable { .. } => "PinUnavailable",
            CliError::PinMismatch(_) => "PinMismatch",
            CliError::BadSignature(_) => "BadSignature",
            CliError::Refused(_) => "PolicyDenied",
            CliError::AuditBroken(_) => "AuditBroken",
        }
    }

    /// The process exit code for this error (see the module table).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Carrier(e) => match e {
                Error::WrongPin { .. }
                | Error::PinLocked { .. }
                | Error::PinMustChange { .. }
                | Error::PinRejected(_)
                | Error::LoginRequired(_) => EXIT_PIN,
                Error::NotFound(_) | Error::Ambiguous { .. } => EXIT_NOT_FOUND,
                Error::Refused(_) => EXIT_REFUSED,
                _ => EXIT_ERROR,
            },
            CliError::Config(_) => EXIT_ERROR,
            CliError::Usage(_) => EXIT_USAGE,
            CliError::PinUnavailable { .. } | CliError::PinMismatch(_) => EXIT_PIN,
            CliError::BadSignature(_) | CliError::AuditBroken(_) => EXIT_BAD_SIGNATURE,
            CliError::Refused(_) => EXIT_REFUSED,
        }
    }

    /// The `--json` form: `{"error": {"kind", "message", ...details}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = ErrorBody { kind: self.kind(), message: self.to_string(), candidates: None, retries_left: None };
        if let CliError::Carrier(e) = self {
            match e {
                Error::Ambiguous { candidates, .. } => body.candidates = Some(candidates.clone()),
                Error::WrongPin { retries_left, .. } => body.retries_left = *retries_left,
                _ => {}
            }
        }
        serde_json::json!({ "error": body })
    }
}

#[derive(Serialize)]
struct ErrorBody {
    kind: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retries_left: Option<u32>,
}

/// Result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

/// Prints an error on stderr in the chosen format and returns its exit code.
pub fn report(err: &CliError, json: bool) -> ExitCode {
    if json {
        eprintln!("{}", err.to_json());
    } else {
        eprintln!("ukey: {}", crate::cli::output::sanitize(&err.to_string()));
    }
    ExitCode::from(err.exit_code())
}

#[cfg(test)]
mod tests {
    use ukey_api::PinRole;

    use super::*;

    #[test]
    fn pin_errors_exit_3_and_json_carries_details() {
        let e = CliError::from(Error::WrongPin { role: PinRole::User, retries_left: Some(2), detail: None });
        assert_eq!(e.exit_code(), EXIT_PIN);
        let json = e.to_json();
        assert_eq!(json["error"]["kind"], "WrongPin");
        assert_eq!(json["error"]["retries_left"], 2);
    }

    #[test]
    fn ambiguous_lists_candidates() {
        let e = CliError::from(Error::Ambiguous { what: "key `a`".into(), candidates: vec!["pkcs11:x".into()] });
        assert_eq!(e.exit_code(), EXIT_NOT_FOUND);
        assert_eq!(e.to_json()["error"]["candidates"][0], "pkcs11:x");
    }
}
