//! Vendor administration commands that widely deployed PIV cards (YubiKey) add to SP 800-73-4:
//! the application reset (INS FB) and SET MANAGEMENT KEY (INS FF).

use super::VirtualPiv;
use super::auth::MGMT_KEY_REF;
use crate::mgmt::MgmtAlgorithm;
use crate::state::CardState;
use crate::status::Sw;
use zeroize::Zeroizing;

impl VirtualPiv {
    /// Reset to factory state, accepted only when both the PIN and the PUK are blocked (so a
    /// holder's keys are never wiped by someone who merely holds the card); `6985` otherwise.
    pub(super) fn reset_card(&mut self, p1: u8, p2: u8, _data: &[u8]) -> Result<Vec<u8>, Sw> {
        if (p1, p2) != (0x00, 0x00) {
            return Err(Sw::WRONG_P1P2);
        }
        if !(self.state.pin.is_blocked() && self.state.puk.is_blocked()) {
            return Err(Sw::CONDITIONS_OF_USE);
        }
        self.state = CardState::new(self.state.factory.clone());
        self.session.clear_security();
        self.persist()?;
        Ok(Vec::new())
    }

    /// SET MANAGEMENT KEY: P1-P2 = FFFF (or FFFE, touch policy, ignored here); data =
    /// algorithm, `9B`, key length, key. Needs the current management key.
    pub(super) fn set_management_key(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if p1 != 0xFF || (p2 != 0xFF && p2 != 0xFE) {
            return Err(Sw::WRONG_P1P2);
        }
        if !self.session.mgmt_authenticated {
            return Err(Sw::SECURITY_STATUS);
        }
        let [alg, reference, len, key @ ..] = data else {
            return Err(Sw::WRONG_DATA);
        };
        let alg = MgmtAlgorithm::from_id(*alg).ok_or(Sw::WRONG_DATA)?;
        if *reference != MGMT_KEY_REF || usize::from(*len) != key.len() || key.len() != alg.key_len() {
            return Err(Sw::WRONG_DATA);
        }
        self.state.mgmt_algorithm = alg;
        self.state.mgmt_key = Zeroizing::new(key.to_vec());
        self.persist()?;
        Ok(Vec::new())
    }
}
