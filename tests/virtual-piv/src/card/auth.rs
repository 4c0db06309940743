//! GENERAL AUTHENTICATE (INS 87, SP 800-73-4 Part 2 §3.2.4): management-key authentication
//! (key 9B; mutual with a witness, external with a challenge) and the private-key operations of
//! the asymmetric slots (signature / RSA raw operation with `81`, ECDH with `85`).

use super::{PendingAuth, VirtualPiv};
use crate::objects::is_key_slot;
use crate::rng;
use crate::state::PinPolicy;
use crate::status::Sw;
use crate::tlv::{self, Tlv};

/// Key reference of the card management key.
pub(super) const MGMT_KEY_REF: u8 = 0x9B;
/// Dynamic authentication template.
const TEMPLATE: u32 = 0x7C;
const WITNESS: u32 = 0x80;
const CHALLENGE: u32 = 0x81;
const RESPONSE: u32 = 0x82;
const EXPONENTIATION: u32 = 0x85;

impl VirtualPiv {
    pub(super) fn general_authenticate(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        let pending = self.session.pending_auth.take();
        let (template, rest) = tlv::read(data).map_err(|_| Sw::WRONG_DATA)?;
        if template.tag != TEMPLATE || !rest.is_empty() {
            return Err(Sw::WRONG_DATA);
        }
        let items = tlv::read_all(template.value).map_err(|_| Sw::WRONG_DATA)?;
        if p2 == MGMT_KEY_REF {
            return self.mgmt_authenticate(p1, &items, pending);
        }
        if !is_key_slot(p2) {
            return Err(Sw::WRONG_P1P2);
        }
        self.private_key_operation(p1, p2, &items)
    }

    fn mgmt_authenticate(&mut self, p1: u8, items: &[Tlv<'_>], pending: Option<PendingAuth>) -> Result<Vec<u8>, Sw> {
        let alg = self.state.mgmt_algorithm;
        if !alg.is_named_by(p1) {
            return Err(Sw::WRONG_P1P2);
        }
        let key = self.state.mgmt_key.clone();
        let block = alg.block_len();
        let get = |tag| items.iter().find(|t| t.tag == tag).map(|t| t.value);
        match (get(WITNESS), get(CHALLENGE), get(RESPONSE)) {
            // Mutual, step 1: the host asks for a witness.
            (Some([]), None, None) => {
                let witness = rng::vec(block);
                let encrypted = alg.encrypt_block(&key, &witness)?;
                self.session.pending_auth = Some(PendingAuth::Witness(witness));
                Ok(tlv::encode(TEMPLATE, &tlv::encode(WITNESS, &encrypted)))
            }
            // Mutual, step 2: the decrypted witness proves the host; encrypting its challenge
            // proves the card.
            (Some(witness), Some(challenge), None) | (Some(witness), Some(challenge), Some([])) => {
                let Some(PendingAuth::Witness(expected)) = pending else {
                    return Err(Sw::CONDITIONS_OF_USE);
                };
                if challenge.len() != block {
                    return Err(Sw::WRONG_DATA);
                }
                if !constant_time_eq(witness, &expected) {
                    self.session.mgmt_authenticated = false;
                    return Err(Sw::SECURITY_STATUS);
                }
                let response = alg.encrypt_block(&key, challenge)?;
                self.session.mgmt_authenticated = true;
                Ok(tlv::encode(TEMPLATE, &tlv::encode(RESPONSE, &response)))
            }
            // External, step 1: the host asks for a challenge.
            (None, Some([]), None) => {
                let challenge = rng::vec(block);
                self.session.pending_auth = Some(PendingAuth::Challenge(challenge.clone()));
                Ok(tlv::encode(TEMPLATE, &tlv::encode(CHALLENGE, &challenge)))
            }
            // External, step 2: the host returns the challenge encrypted.
            (None, None, Some(response)) if !response.is_empty() => {
                let Some(PendingAuth::Challenge(challenge)) = pending else {
                    return Err(Sw::CONDITIONS_OF_USE);
                };
                let expected = alg.encrypt_block(&key, &challenge)?;
                if !constant_time_eq(response, &expected) {
                    self.session.mgmt_authenticated = false;
                    return Err(Sw::SECURITY_STATUS);
                }
                self.session.mgmt_authenticated = true;
                Ok(Vec::new())
            }
            // Internal: the host asks the card to encrypt its challenge (proves the card only).
            (None, Some(challenge), Some([])) if !challenge.is_empty() => {
                let response = alg.encrypt_block(&key, challenge)?;
                Ok(tlv::encode(TEMPLATE, &tlv::encode(RESPONSE, &response)))
            }
            _ => Err(Sw::WRONG_DATA),
        }
    }

    fn private_key_operation(&mut self, p1: u8, slot: u8, items: &[Tlv<'_>]) -> Result<Vec<u8>, Sw> {
        let entry = self.state.keys.get(&slot).ok_or(Sw::REFERENCE_NOT_FOUND)?;
        if entry.key.algorithm().id() != p1 {
            return Err(Sw::WRONG_P1P2);
        }
        let get = |tag| items.iter().find(|t| t.tag == tag).map(|t| t.value);
        let request = match (get(RESPONSE), get(CHALLENGE), get(EXPONENTIATION)) {
            (Some([]), Some(challenge), None) => Operation::Sign(challenge),
            (Some([]), None, Some(point)) => Operation::Agree(point),
            _ => return Err(Sw::WRONG_DATA),
        };
        match entry.pin_policy {
            PinPolicy::Never => {}
            PinPolicy::Once if self.session.pin_verified => {}
            PinPolicy::Always if self.session.pin_verified && self.session.pin_always_window => {}
            _ => return Err(Sw::SECURITY_STATUS),
        }
        let result = match request {
            Operation::Sign(challenge) => entry.key.sign(challenge)?,
            Operation::Agree(point) => entry.key.key_agreement(point)?.to_vec(),
        };
        if entry.pin_policy == PinPolicy::Always {
            self.session.pin_always_window = false;
        }
        Ok(tlv::encode(TEMPLATE, &tlv::encode(RESPONSE, &result)))
    }
}

enum Operation<'a> {
    Sign(&'a [u8]),
    Agree(&'a [u8]),
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
