//! PIN roles and PIN state, as every carrier reports them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which secret authenticates an operation.
///
/// PKCS#11 calls the second one the SO PIN, PIV calls it the PUK; for the holder and the helpdesk
/// both are "the code that unblocks the user PIN".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PinRole {
    /// The holder's PIN.
    User,
    /// The security officer PIN or PUK, held by the helpdesk.
    So,
}

impl fmt::Display for PinRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinRole::User => "user PIN",
            PinRole::So => "SO PIN / PUK",
        })
    }
}

/// The state of one PIN, as far as the carrier reveals it.
///
/// Fields are optional because carriers differ: PIV reports exact retries, PKCS#11 only flags
/// (count low, final try, locked), the soft token everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinStatus {
    /// Tries left before the PIN locks, if the carrier reports it.
    pub retries_left: Option<u32>,
    /// Tries allowed in total, if known.
    pub max_retries: Option<u32>,
    /// The PIN is blocked.
    pub locked: bool,
    /// At least one wrong try since the last success (PKCS#11 COUNT_LOW).
    pub count_low: bool,
    /// One more wrong try locks the PIN (PKCS#11 FINAL_TRY).
    pub final_try: bool,
    /// The PIN is still the manufacturer's or issuer's default value, if the carrier knows.
    pub default_pin: Option<bool>,
    /// The carrier demands a change before use (PKCS#11 TO_BE_CHANGED).
    pub must_change: bool,
}

/// Both PINs of a carrier, plus whether PIN entry happens on the device itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinState {
    /// The holder's PIN.
    pub user: PinStatus,
    /// The SO PIN or PUK.
    pub so: PinStatus,
    /// A PIN pad on the reader or token collects the PIN (PKCS#11 protected authentication path).
    pub protected_path: bool,
}
