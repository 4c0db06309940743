//! A freshly initialised token state: new master key, both PIN records, no objects.

use std::time::{SystemTime, UNIX_EPOCH};

use ukey_api::{Pin, PinRole, Result};

use crate::config::StoreConfig;
use crate::format::TokenState;
use crate::naming::check_token_label;
use crate::pins::{check_pin_length, new_master_key, new_record};

/// Builds the state of a new (or re-initialised) token. A new master key means nothing sealed
/// under the old one can be opened again.
pub fn fresh_state(
    label: &str,
    serial: &str,
    so_pin: &Pin,
    user_pin: &Pin,
    config: &StoreConfig,
) -> Result<TokenState> {
    check_token_label(label)?;
    check_pin_length(so_pin, PinRole::So)?;
    check_pin_length(user_pin, PinRole::User)?;
    let master = new_master_key()?;
    Ok(TokenState {
        label: label.to_string(),
        serial: serial.to_string(),
        created: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        user_pin: new_record(user_pin, PinRole::User, serial, &master, config.kdf, config.max_tries)?,
        so_pin: new_record(so_pin, PinRole::So, serial, &master, config.kdf, config.max_tries)?,
        keys: Vec::new(),
        certificates: Vec::new(),
        data: Vec::new(),
    })
}
