//! VERIFY (20), CHANGE REFERENCE DATA (24) and RESET RETRY COUNTER (2C) for the PIV application
//! PIN (key reference 80) and the PUK (81), with real retry counters (SP 800-73-4 Part 2
//! §3.2.1–3.2.3).

use super::VirtualPiv;
use crate::state::RetryCounter;
use crate::status::Sw;

/// PIV application PIN.
pub(super) const PIN_REF: u8 = 0x80;
/// PIN unblocking key.
pub(super) const PUK_REF: u8 = 0x81;
/// Global PIN: this card has none (the discovery object says so).
const GLOBAL_PIN_REF: u8 = 0x00;

impl VirtualPiv {
    /// VERIFY: 8 bytes of FF-padded PIN checks it; no data asks the status without spending a
    /// try (`9000` verified, `63Cx` not); P1 = FF with no data resets the verification.
    pub(super) fn verify(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        match p2 {
            PIN_REF => {}
            GLOBAL_PIN_REF | PUK_REF => return Err(Sw::REFERENCE_NOT_FOUND),
            _ => return Err(Sw::WRONG_P1P2),
        }
        match p1 {
            0xFF if data.is_empty() => {
                self.session.pin_verified = false;
                self.session.pin_always_window = false;
                return Ok(Vec::new());
            }
            0xFF => return Err(Sw::WRONG_DATA),
            0x00 => {}
            _ => return Err(Sw::WRONG_P1P2),
        }
        if data.is_empty() {
            if self.state.pin.is_blocked() {
                return Err(Sw::AUTH_BLOCKED);
            }
            return if self.session.pin_verified { Ok(Vec::new()) } else { Err(Sw::retries(self.state.pin.left)) };
        }
        if data.len() != 8 {
            return Err(Sw::WRONG_DATA);
        }
        if self.state.pin.is_blocked() {
            return Err(Sw::AUTH_BLOCKED);
        }
        if self.state.pin.matches(data) {
            self.state.pin.left = self.state.pin.limit;
            self.session.pin_verified = true;
            self.session.pin_always_window = true;
            self.persist()?;
            Ok(Vec::new())
        } else {
            Err(self.wrong_value(PIN_REF))
        }
    }

    /// CHANGE REFERENCE DATA: old value (8) then new value (8) for the PIN or the PUK. A new PIN
    /// that is not 6–8 digits padded with FF is `6A80` and spends no try.
    pub(super) fn change_reference_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if p1 != 0x00 {
            return Err(Sw::WRONG_P1P2);
        }
        if p2 != PIN_REF && p2 != PUK_REF {
            return if p2 == GLOBAL_PIN_REF { Err(Sw::REFERENCE_NOT_FOUND) } else { Err(Sw::WRONG_P1P2) };
        }
        if data.len() != 16 {
            return Err(Sw::WRONG_DATA);
        }
        let (old, new) = data.split_at(8);
        if p2 == PIN_REF && !is_valid_pin(new) {
            return Err(Sw::WRONG_DATA);
        }
        let counter = if p2 == PIN_REF { &mut self.state.pin } else { &mut self.state.puk };
        if counter.is_blocked() {
            return Err(Sw::AUTH_BLOCKED);
        }
        if !counter.matches(old) {
            return Err(self.wrong_value(p2));
        }
        counter.value.copy_from_slice(new);
        counter.left = counter.limit;
        if p2 == PIN_REF {
            // SP 800-73-4 Part 2 §3.2.2: success sets the security status of the reference.
            self.session.pin_verified = true;
            self.session.pin_always_window = true;
        }
        self.persist()?;
        Ok(Vec::new())
    }

    /// RESET RETRY COUNTER: PUK (8) then new PIN (8); unblocks and replaces the PIN. The PIN is
    /// left unverified.
    pub(super) fn reset_retry_counter(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if p1 != 0x00 {
            return Err(Sw::WRONG_P1P2);
        }
        if p2 != PIN_REF {
            return if p2 == GLOBAL_PIN_REF || p2 == PUK_REF {
                Err(Sw::REFERENCE_NOT_FOUND)
            } else {
                Err(Sw::WRONG_P1P2)
            };
        }
        if data.len() != 16 {
            return Err(Sw::WRONG_DATA);
        }
        let (puk, new_pin) = data.split_at(8);
        if !is_valid_pin(new_pin) {
            return Err(Sw::WRONG_DATA);
        }
        if self.state.puk.is_blocked() {
            return Err(Sw::AUTH_BLOCKED);
        }
        if !self.state.puk.matches(puk) {
            return Err(self.wrong_value(PUK_REF));
        }
        self.state.puk.left = self.state.puk.limit;
        self.state.pin.value.copy_from_slice(new_pin);
        self.state.pin.left = self.state.pin.limit;
        self.session.pin_verified = false;
        self.session.pin_always_window = false;
        self.persist()?;
        Ok(Vec::new())
    }

    /// Spends one try of the PIN or PUK after a wrong value and answers `63Cx` (`63C0` on the
    /// try that blocks it). A wrong PIN also drops the PIN's security status.
    fn wrong_value(&mut self, reference: u8) -> Sw {
        let counter: &mut RetryCounter = if reference == PIN_REF { &mut self.state.pin } else { &mut self.state.puk };
        counter.left = counter.left.saturating_sub(1);
        let left = counter.left;
        if reference == PIN_REF {
            self.session.pin_verified = false;
            self.session.pin_always_window = false;
        }
        match self.persist() {
            Ok(()) => Sw::retries(left),
            Err(sw) => sw,
        }
    }
}

/// SP 800-73-4 Part 1 §2.4.3: 6 to 8 ASCII digits, padded with FF to 8 bytes.
fn is_valid_pin(padded: &[u8]) -> bool {
    let digits = padded.iter().take_while(|b| b.is_ascii_digit()).count();
    (6..=8).contains(&digits) && padded[digits..].iter().all(|b| *b == 0xFF)
}
