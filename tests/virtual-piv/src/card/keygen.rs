//! GENERATE ASYMMETRIC KEY PAIR (INS 47, SP 800-73-4 Part 2 §3.3.2): a new key in a slot, the
//! public key answered as template `7F49`. Needs the management key.

use super::VirtualPiv;
use crate::keys::{KeyAlgorithm, SlotKey};
use crate::objects::is_key_slot;
use crate::state::{PinPolicy, SlotEntry};
use crate::status::Sw;
use crate::tlv;

/// Control reference template.
const CONTROL: u32 = 0xAC;
const ALGORITHM: u32 = 0x80;
/// YubiKey extension: PIN policy of the new key (01 never, 02 once, 03 always).
const PIN_POLICY: u32 = 0xAA;

impl VirtualPiv {
    pub(super) fn generate_key_pair(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if p1 != 0x00 || !is_key_slot(p2) {
            return Err(Sw::WRONG_P1P2);
        }
        if !self.session.mgmt_authenticated {
            return Err(Sw::SECURITY_STATUS);
        }
        let (control, rest) = tlv::read(data).map_err(|_| Sw::WRONG_DATA)?;
        if control.tag != CONTROL || !rest.is_empty() {
            return Err(Sw::WRONG_DATA);
        }
        let items = tlv::read_all(control.value).map_err(|_| Sw::WRONG_DATA)?;
        let alg = match items.iter().find(|t| t.tag == ALGORITHM).map(|t| t.value) {
            Some([id]) => KeyAlgorithm::from_id(*id).ok_or(Sw::WRONG_DATA)?,
            _ => return Err(Sw::WRONG_DATA),
        };
        let policy = match items.iter().find(|t| t.tag == PIN_POLICY).map(|t| t.value) {
            None | Some([0x00]) => PinPolicy::default_for(p2),
            Some([0x01]) => PinPolicy::Never,
            Some([0x02]) => PinPolicy::Once,
            Some([0x03]) => PinPolicy::Always,
            Some(_) => return Err(Sw::WRONG_DATA),
        };
        self.install_key(p2, alg, policy)
    }

    /// Generates and stores a key, answering its public key template.
    pub(super) fn install_key(&mut self, slot: u8, alg: KeyAlgorithm, pin_policy: PinPolicy) -> Result<Vec<u8>, Sw> {
        let key = SlotKey::generate(alg)?;
        let template = key.public_key_template();
        self.state.keys.insert(slot, SlotEntry { key, pin_policy });
        self.persist()?;
        Ok(template)
    }
}
