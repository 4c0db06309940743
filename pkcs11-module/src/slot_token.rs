//! Slot and token management: `C_GetSlotList`, `C_GetSlotInfo`, `C_GetTokenInfo`,
//! `C_GetMechanismList`, `C_GetMechanismInfo`.
//!
//! Tokens carry the carrier's identity (label, manufacturer, model, serial) and
//! `CKF_PROTECTED_AUTHENTICATION_PATH`: the PIN is entered in the agent's own dialog, so programs
//! log in with a NULL PIN and never ask for it themselves. `CKF_LOGIN_REQUIRED` only in the login
//! PIN mode ([`crate::pin_mode`]).

use cryptoki_sys::*;

use ukey_api::{CarrierKind, PinStatus};

use crate::mechanisms::{self, MechanismInfo};
use crate::module;
use crate::rv::{self, Context, P11Result};
use crate::text::blank_padded;

/// `C_GetSlotList`: asks the agent for its carriers every time, so new carriers show up.
pub fn slot_list(token_present: bool) -> P11Result<Vec<CK_SLOT_ID>> {
    let m = module::current()?;
    m.refresh_slots();
    Ok(m.lock().slots.ids(token_present))
}

/// What `C_GetSlotInfo` reports.
pub struct SlotInfo {
    /// Description, blank padded.
    pub description: [u8; 64],
    /// Manufacturer, blank padded.
    pub manufacturer: [u8; 32],
    /// `CKF_*`.
    pub flags: CK_FLAGS,
}

/// `C_GetSlotInfo`.
pub fn slot_info(slot: CK_SLOT_ID) -> P11Result<SlotInfo> {
    let m = module::current()?;
    m.ensure_listed();
    let inner = m.lock();
    let s = inner.slots.get(slot)?;
    let mut flags = CKF_REMOVABLE_DEVICE;
    if s.present {
        flags |= CKF_TOKEN_PRESENT;
    }
    if s.carrier.kind != CarrierKind::Soft {
        flags |= CKF_HW_SLOT;
    }
    Ok(SlotInfo {
        description: blank_padded(&format!("ukey {}: {}", s.carrier.kind, s.carrier.display_name())),
        manufacturer: blank_padded("ukey project"),
        flags,
    })
}

/// What `C_GetTokenInfo` reports.
pub struct TokenInfo {
    /// Label.
    pub label: [u8; 32],
    /// Manufacturer.
    pub manufacturer: [u8; 32],
    /// Model.
    pub model: [u8; 16],
    /// Serial number.
    pub serial: [u8; 16],
    /// `CKF_*`.
    pub flags: CK_FLAGS,
    /// Shortest PIN.
    pub min_pin: CK_ULONG,
    /// Longest PIN.
    pub max_pin: CK_ULONG,
}

/// `C_GetTokenInfo`.
pub fn token_info(slot: CK_SLOT_ID) -> P11Result<TokenInfo> {
    let m = module::current()?;
    m.ensure_listed();
    let (carrier, token) = {
        let inner = m.lock();
        let s = inner.slots.present(slot)?;
        (s.carrier.clone(), s.token())
    };
    let caps = m.capabilities(slot)?;
    let pin = m.agent.pin_state(&token).map_err(|e| rv::for_link_error(&e, Context::Read))?;
    // The protected path stays in both PIN modes: a program that logs in anyway does so with a
    // NULL PIN and the agent's dialog.
    let mut flags = CKF_USER_PIN_INITIALIZED | CKF_PROTECTED_AUTHENTICATION_PATH;
    if m.pin_mode.login_required() {
        flags |= CKF_LOGIN_REQUIRED;
    }
    if carrier.initialized {
        flags |= CKF_TOKEN_INITIALIZED;
    }
    flags |= pin_flags(&pin.user, false) | pin_flags(&pin.so, true);
    let (min_pin, max_pin) = caps.pin_length.unwrap_or((4, ukey_api::secret::MAX_PIN_LEN));
    let label = if carrier.label.trim().is_empty() { "ukey carrier" } else { carrier.label.as_str() };
    Ok(TokenInfo {
        label: blank_padded(label),
        manufacturer: blank_padded(&carrier.manufacturer),
        model: blank_padded(&carrier.model),
        serial: blank_padded(&carrier.serial),
        flags,
        min_pin: min_pin as CK_ULONG,
        max_pin: max_pin as CK_ULONG,
    })
}

/// The `CKF_*_PIN_*` flags of a PIN's state.
fn pin_flags(p: &PinStatus, so: bool) -> CK_FLAGS {
    let (low, last, locked, change) = if so {
        (CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED, CKF_SO_PIN_TO_BE_CHANGED)
    } else {
        (CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED, CKF_USER_PIN_TO_BE_CHANGED)
    };
    let retries_low = matches!((p.retries_left, p.max_retries), (Some(l), Some(m)) if l < m);
    let mut flags = 0;
    if p.count_low || retries_low {
        flags |= low;
    }
    if p.final_try || p.retries_left == Some(1) {
        flags |= last;
    }
    if p.locked {
        flags |= locked;
    }
    if p.must_change {
        flags |= change;
    }
    flags
}

/// `C_GetMechanismList`.
pub fn mechanism_list(slot: CK_SLOT_ID) -> P11Result<Vec<CK_MECHANISM_TYPE>> {
    let m = module::current()?;
    m.ensure_listed();
    Ok(mechanisms::offered(&m.capabilities(slot)?))
}

/// `C_GetMechanismInfo`.
pub fn mechanism_info(slot: CK_SLOT_ID, mechanism: CK_MECHANISM_TYPE) -> P11Result<MechanismInfo> {
    let m = module::current()?;
    m.ensure_listed();
    let hardware = m.lock().slots.present(slot)?.carrier.kind != CarrierKind::Soft;
    mechanisms::info(mechanism, &m.capabilities(slot)?, hardware).ok_or(CKR_MECHANISM_INVALID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_state_becomes_token_flags() {
        let fresh = PinStatus { retries_left: Some(3), max_retries: Some(3), ..PinStatus::default() };
        assert_eq!(pin_flags(&fresh, false), 0);
        let last = PinStatus { retries_left: Some(1), max_retries: Some(3), ..PinStatus::default() };
        assert_eq!(pin_flags(&last, false), CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY);
        let locked = PinStatus { locked: true, ..PinStatus::default() };
        assert_eq!(pin_flags(&locked, true), CKF_SO_PIN_LOCKED);
    }
}
