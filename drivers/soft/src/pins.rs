//! PIN records: the rules a new PIN must meet, wrapping the master key under a PIN, and trying a
//! PIN against a record.
//!
//! Every PIN record holds its own copy of the token master key, sealed under a key derived from
//! that PIN. Checking a PIN therefore *is* unwrapping the master key: there is no PIN hash to
//! compare against, and a wrong PIN yields nothing usable. Changing a PIN re-wraps the master
//! key only; the keys sealed under the master key stay as they are.

use zeroize::Zeroizing;

use ukey_api::{Error, Pin, PinRole, Result};

use crate::format::PinRecord;
use crate::kdf::{KEY_LEN, KdfParams, SALT_LEN, derive_kek};
use crate::random::random_bytes;
use crate::seal::{OpenError, open, seal};

/// Shortest PIN the soft token accepts.
pub const MIN_PIN_LEN: usize = 4;

/// Longest PIN the soft token accepts.
pub const MAX_PIN_LEN: usize = ukey_api::secret::MAX_PIN_LEN;

/// Wrong tries before a PIN locks.
pub const DEFAULT_MAX_TRIES: u32 = 6;

/// The master key every secret of a token is sealed under.
pub type MasterKey = Zeroizing<[u8; KEY_LEN]>;

/// Refuses a PIN outside the length rule, before it reaches any record (no try is spent). The
/// message states the rule, never the value.
pub fn check_pin_length(pin: &Pin, role: PinRole) -> Result<()> {
    let len = pin.len();
    if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&len) {
        return Err(Error::PinRejected(format!(
            "the {role} of a software token must be {MIN_PIN_LEN} to {MAX_PIN_LEN} characters long; this one has {len}"
        )));
    }
    Ok(())
}

/// A fresh random master key.
pub fn new_master_key() -> Result<MasterKey> {
    Ok(Zeroizing::new(random_bytes::<KEY_LEN>()?))
}

/// The associated data that binds a wrapped master key to its token and role.
pub fn master_key_aad(serial: &str, role: PinRole) -> Vec<u8> {
    let role = match role {
        PinRole::User => "user",
        PinRole::So => "so",
    };
    format!("ukey-soft/v1/master-key/{serial}/{role}").into_bytes()
}

/// A new record for `pin` holding `master`, with a full retry counter.
pub fn new_record(
    pin: &Pin,
    role: PinRole,
    serial: &str,
    master: &MasterKey,
    kdf: KdfParams,
    max_tries: u32,
) -> Result<PinRecord> {
    check_pin_length(pin, role)?;
    let salt = random_bytes::<SALT_LEN>()?;
    let kek = derive_kek(pin, &salt, &kdf)?;
    let wrapped_master_key = seal(&kek, &master_key_aad(serial, role), master.as_slice())?;
    Ok(PinRecord { kdf, salt: salt.to_vec(), wrapped_master_key, tries_left: max_tries, max_tries, must_change: false })
}

/// What trying a PIN against a record found.
pub enum Attempt {
    /// The PIN was right; here is the master key.
    Right(MasterKey),
    /// The PIN was wrong.
    Wrong,
    /// The record cannot be tried: it is damaged (the reason says how).
    Damaged(String),
}

/// Tries `pin` against `record` (the caller has already spent the try on disk).
pub fn attempt(record: &PinRecord, pin: &Pin, role: PinRole, serial: &str) -> Result<Attempt> {
    let kek = derive_kek(pin, &record.salt, &record.kdf)?;
    match open(&kek, &master_key_aad(serial, role), &record.wrapped_master_key) {
        Ok(plain) => {
            if plain.len() != KEY_LEN {
                return Ok(Attempt::Damaged(format!("the {role} record holds a master key of the wrong length")));
            }
            let mut key: MasterKey = Zeroizing::new([0u8; KEY_LEN]);
            key.copy_from_slice(&plain);
            Ok(Attempt::Right(key))
        }
        Err(OpenError::Unauthentic) => Ok(Attempt::Wrong),
        Err(OpenError::Malformed(reason)) => Ok(Attempt::Damaged(format!("the {role} record: {reason}"))),
    }
}
