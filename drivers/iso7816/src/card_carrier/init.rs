//! Initialising a PIV card: the application reset (INS `FB`) that widely deployed PIV cards
//! accept once both PIN and PUK are blocked, wrapped so that it is authorised by the PUK.
//!
//! Steps, all in one card transaction: check the PUK (changing it to itself: a wrong PUK is
//! refused before anything is touched, unless the PUK is already blocked — then the card is in
//! its reset state, which anyone holding it can reach anyway); keep the CHUID, so the card keeps
//! its identity (custody records name it); block the PIN and the PUK with deliberately wrong
//! values; reset; set the PUK and PIN asked for; write the CHUID back (a fresh one if the card
//! had none). After this the management key is the factory default.

use ukey_api::{Error, InitRequest, Pin, PinRole, Result};

use crate::piv::chuid::Chuid;
use crate::piv::objects::{REF_PIN, REF_PUK, TAG_CHUID};
use crate::piv::{ManagementKey, PinProbe, Piv};

/// Factory PIN after a reset.
const DEFAULT_PIN: &str = "123456";
/// Factory PUK after a reset.
const DEFAULT_PUK: &str = "12345678";
/// More wrong tries than any card allows, so the blocking loops always end.
const MAX_BLOCKING_TRIES: usize = 16;

/// Runs the whole initialisation (see the module documentation).
pub(super) fn initialize(piv: &mut Piv<'_, '_>, pin_ref: u8, request: &InitRequest) -> Result<()> {
    if !request.label.is_empty() {
        log::info!("PIV cards have no token label; `{}` is not stored", request.label);
    }
    let puk = &request.so_pin;
    let puk_blocked = match piv.change_reference(REF_PUK, puk, puk) {
        Ok(()) => false,
        Err(Error::PinLocked { .. }) => true,
        Err(e) => return Err(e),
    };
    let chuid = piv.get_data(TAG_CHUID)?;
    block_pin(piv, pin_ref)?;
    if !puk_blocked {
        block_puk(piv, puk)?;
    }
    piv.reset()?;
    piv.select()?;
    let default_puk = Pin::new(DEFAULT_PUK)?;
    if *puk != default_puk {
        piv.change_reference(REF_PUK, &default_puk, puk)?;
    }
    if let Some(user) = &request.user_pin {
        let default_pin = Pin::new(DEFAULT_PIN)?;
        if *user != default_pin {
            piv.change_reference(REF_PIN, &default_pin, user)?;
        }
    }
    piv.authenticate_management(&ManagementKey::default_key())?;
    let content = match chuid {
        Some(c) => c.to_vec(),
        None => Chuid::generate()?,
    };
    piv.put_data(TAG_CHUID, &content)
}

/// A random 8-digit value, for deliberately wrong PIN tries.
fn random_pin() -> Result<Pin> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| Error::Device(format!("no randomness: {e}")))?;
    Pin::new(bytes.iter().map(|b| char::from(b'0' + b % 10)).collect::<String>())
}

fn block_pin(piv: &mut Piv<'_, '_>, pin_ref: u8) -> Result<()> {
    for _ in 0..MAX_BLOCKING_TRIES {
        if piv.probe_pin(pin_ref)? == PinProbe::Blocked {
            return Ok(());
        }
        match piv.verify(pin_ref, &random_pin()?) {
            Err(Error::WrongPin { .. }) | Ok(()) => continue,
            Err(Error::PinLocked { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Err(Error::Device(format!(
        "the PIN did not block after {MAX_BLOCKING_TRIES} wrong tries; the card cannot be reset"
    )))
}

fn block_puk(piv: &mut Piv<'_, '_>, puk: &Pin) -> Result<()> {
    let wrong = Pin::new(if puk.expose() == "00000000" { "11111111" } else { "00000000" })?;
    for _ in 0..MAX_BLOCKING_TRIES {
        match piv.unblock(&wrong, &wrong) {
            Err(Error::WrongPin { role: PinRole::So, retries_left: Some(0), .. }) | Err(Error::PinLocked { .. }) => {
                return Ok(());
            }
            Err(Error::WrongPin { .. }) => continue,
            Ok(()) => return Err(Error::Device("the card accepted a wrong PUK; refusing to reset it".into())),
            Err(e) => return Err(e),
        }
    }
    Err(Error::Device(format!(
        "the PUK did not block after {MAX_BLOCKING_TRIES} wrong tries; the card cannot be reset"
    )))
}
