//! The PIN lifecycle: state from token flags, verify (`C_Login`), change (`C_SetPIN`), unblock
//! (SO login + `C_InitPIN`) and token initialisation (`C_InitToken`) for the helpdesk.
//!
//! PKCS#11 reveals no retry counter, only flags; [`pin_state`] turns them into the contract's
//! [`PinState`]. Every operation logs out before it returns (the transaction does), and a wrong
//! PIN's error carries the flags the token showed right after the failure.

use std::collections::HashSet;

use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use ukey_api::{Credential, Error, InitRequest, Pin, PinRole, PinState, PinStatus, Result};

use crate::errors::{self, PinFlags};
use crate::session::{Token, Tx};

/// Longest token label PKCS#11 allows (32 bytes, blank-padded).
pub const MAX_LABEL_LEN: usize = 32;

/// The contract's PIN state from a token's flags.
pub fn pin_state(info: &TokenInfo) -> PinState {
    let status = |role| {
        let flags = PinFlags::from_token(info, role);
        PinStatus {
            retries_left: flags.retries_left(),
            max_retries: None,
            locked: flags.locked,
            count_low: flags.count_low,
            final_try: flags.final_try,
            default_pin: None,
            must_change: flags.to_be_changed,
        }
    };
    PinState {
        user: status(PinRole::User),
        so: status(PinRole::So),
        protected_path: info.protected_authentication_path(),
    }
}

fn auth_pin(pin: &Pin) -> AuthPin {
    AuthPin::from(pin.expose().to_string())
}

/// Checks a new PIN against the token's length rule before it is sent.
fn check_length(info: &TokenInfo, pin: &Pin) -> Result<()> {
    let (min, max) = (info.min_pin_length(), info.max_pin_length());
    let len = pin.expose_bytes().len();
    if len < min || (max > 0 && len > max) {
        return Err(Error::PinRejected(format!("this token wants a PIN of {min} to {max} characters")));
    }
    Ok(())
}

/// `C_Login` and straight back out: spends a try when wrong.
pub fn verify(token: &Token, role: PinRole, auth: &Credential) -> Result<()> {
    token.run("checking the PIN", |tx| {
        // A kept login must not stand in for the check.
        tx.logout();
        tx.login(role, auth, "checking the PIN")
    })
}

/// `C_SetPIN` for the user or SO PIN, after logging in with the old one.
pub fn change(token: &Token, role: PinRole, old: &Credential, new: &Pin) -> Result<()> {
    let Credential::Pin(old_pin) = old else {
        return Err(Error::NotSupported(
            "changing a PIN on the token's own PIN pad is not supported through this module; type the PIN".into(),
        ));
    };
    token.run("changing the PIN", |tx| {
        check_length(&tx.token_info()?, new)?;
        tx.logout();
        tx.login(role, old, "changing the PIN")?;
        let result = tx.session()?.set_pin(&auth_pin(old_pin), &auth_pin(new));
        result.map_err(|e| map_pin_call(tx, e, "changing the PIN", role))
    })
}

/// SO login, then `C_InitPIN` with the new user PIN (clears the user PIN's lock).
pub fn unblock(token: &Token, so: &Credential, new_user: &Pin) -> Result<()> {
    token.run("unblocking the user PIN", |tx| {
        check_length(&tx.token_info()?, new_user)?;
        tx.login(PinRole::So, so, "unblocking the user PIN")?;
        let result = tx.session()?.init_pin(&auth_pin(new_user));
        result.map_err(|e| map_pin_call(tx, e, "setting the new user PIN", PinRole::User))
    })
}

fn map_pin_call(tx: &mut Tx<'_>, err: cryptoki::error::Error, during: &str, role: PinRole) -> Error {
    if errors::is_removal(&err) {
        return tx.fail(err, during);
    }
    let flags = tx.token_info().ok().map(|i| PinFlags::from_token(&i, role));
    errors::map_login(err, during, role, flags)
}

/// `C_InitToken` (wipes the token), then the user PIN when the request sets one. Returns the
/// slot the initialised token now sits in (SoftHSM moves a freshly initialised token to a new
/// slot).
pub fn initialize(token: &Token, request: &InitRequest) -> Result<Slot> {
    let label = request.label.trim();
    if label.is_empty() || label.len() > MAX_LABEL_LEN {
        return Err(Error::InvalidInput(format!("a token label has 1 to {MAX_LABEL_LEN} bytes")));
    }
    let ctx = token.module().ctx().clone();
    let info = token.token_info()?;
    if let Some(user) = &request.user_pin {
        check_length(&info, user)?;
    }
    let slot = token.slot();
    let before: HashSet<String> = serials(&ctx);
    // C_InitToken needs every session of this application on the token closed.
    token.reset();
    let result = ctx.init_token(slot, &auth_pin(&request.so_pin), label);
    result.map_err(|e| {
        let flags = ctx.get_token_info(slot).ok().map(|i| PinFlags::from_token(&i, PinRole::So));
        errors::map_login(e, "initialising the token", PinRole::So, flags)
    })?;
    let serial = token.identity().serial.clone();
    let slot = find_initialised(&ctx, slot, &serial, label, &before).unwrap_or(slot);
    if let Some(user) = &request.user_pin {
        let session = ctx.open_rw_session(slot).map_err(|e| errors::map(e, "opening the new token"))?;
        let so = auth_pin(&request.so_pin);
        session
            .login(cryptoki::session::UserType::So, Some(&so))
            .map_err(|e| errors::map_login(e, "logging in to the new token", PinRole::So, None))?;
        let set = session.init_pin(&auth_pin(user));
        let _ = session.logout();
        set.map_err(|e| errors::map_login(e, "setting the user PIN", PinRole::User, None))?;
    }
    Ok(slot)
}

fn serials(ctx: &cryptoki::context::Pkcs11) -> HashSet<String> {
    ctx.get_slots_with_token()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| ctx.get_token_info(s).ok())
        .map(|i| i.serial_number().trim().to_string())
        .collect()
}

/// The slot of the token just initialised: the same serial, or a serial that was not there
/// before with the new label.
fn find_initialised(
    ctx: &cryptoki::context::Pkcs11,
    old_slot: Slot,
    serial: &str,
    label: &str,
    before: &HashSet<String>,
) -> Option<Slot> {
    let slots = ctx.get_slots_with_token().ok()?;
    let infos: Vec<(Slot, TokenInfo)> =
        slots.into_iter().filter_map(|s| ctx.get_token_info(s).ok().map(|i| (s, i))).collect();
    if let Some((s, _)) =
        infos.iter().find(|(s, i)| *s == old_slot && i.token_initialized() && i.label().trim() == label)
    {
        return Some(*s);
    }
    if !serial.is_empty()
        && let Some((s, _)) = infos.iter().find(|(_, i)| i.serial_number().trim() == serial)
    {
        return Some(*s);
    }
    infos.iter().find(|(_, i)| i.label().trim() == label && !before.contains(i.serial_number().trim())).map(|(s, _)| *s)
}
