//! Slots: one per carrier the agent has served since the module was initialised.
//!
//! A slot keeps its id for the life of the module, and a carrier that is removed and inserted
//! again gets its old slot back (carrier ids are stable), so programs that remember a slot keep
//! finding the same carrier. A removed carrier's slot stays in the list with no token present,
//! as a reader without a card does, and new carriers get new slots at the end; the list only
//! grows, which keeps the two-call `C_GetSlotList` pattern consistent.

use std::sync::Arc;
use std::time::Instant;

use cryptoki_sys::{CK_OBJECT_HANDLE, CK_SLOT_ID, CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_PRESENT};

use ukey_api::{Capabilities, CarrierInfo};

use crate::objects::P11Object;
use crate::rv::P11Result;

/// The first slot id handed out.
const FIRST_SLOT: CK_SLOT_ID = 1;

/// A carrier's objects as last read, with their handles.
pub struct ObjectCache {
    /// When they were read.
    pub read_at: Instant,
    /// Handle and object.
    pub objects: Vec<(CK_OBJECT_HANDLE, Arc<P11Object>)>,
}

/// One slot.
pub struct Slot {
    /// Slot id.
    pub id: CK_SLOT_ID,
    /// The carrier, as last listed.
    pub carrier: CarrierInfo,
    /// The carrier is present now.
    pub present: bool,
    /// Inserted or removed since `C_WaitForSlotEvent` last reported this slot.
    pub event_pending: bool,
    /// What the carrier can do (read once per insertion).
    pub capabilities: Option<Capabilities>,
    /// The agent login this program holds on the carrier: the primary link's generation.
    pub login: Option<u64>,
    /// Objects, cached briefly.
    pub objects: Option<ObjectCache>,
}

impl Slot {
    /// The carrier id, as the agent names it.
    pub fn token(&self) -> String {
        self.carrier.id.to_string()
    }

    fn forget_token_state(&mut self) {
        self.capabilities = None;
        self.login = None;
        self.objects = None;
    }
}

/// Every slot.
#[derive(Default)]
pub struct SlotTable {
    slots: Vec<Slot>,
    listed_once: bool,
}

impl SlotTable {
    /// Takes the agent's current carrier list. Returns the slots whose token went away (their
    /// sessions must close). The first listing raises no events: it is the starting state.
    pub fn update(&mut self, carriers: Vec<CarrierInfo>) -> Vec<CK_SLOT_ID> {
        let raise = self.listed_once;
        self.listed_once = true;
        let mut removed = Vec::new();
        for slot in &mut self.slots {
            if slot.present && !carriers.iter().any(|c| c.id == slot.carrier.id) {
                slot.present = false;
                slot.event_pending = raise;
                slot.forget_token_state();
                removed.push(slot.id);
            }
        }
        for carrier in carriers {
            match self.slots.iter_mut().find(|s| s.carrier.id == carrier.id) {
                Some(slot) => {
                    if !slot.present {
                        slot.present = true;
                        slot.event_pending = raise;
                        slot.forget_token_state();
                    }
                    slot.carrier = carrier;
                }
                None => {
                    let id = FIRST_SLOT + self.slots.len() as CK_SLOT_ID;
                    self.slots.push(Slot {
                        id,
                        carrier,
                        present: true,
                        event_pending: raise,
                        capabilities: None,
                        login: None,
                        objects: None,
                    });
                }
            }
        }
        removed
    }

    /// Every slot id, or only those with a token present.
    pub fn ids(&self, token_present: bool) -> Vec<CK_SLOT_ID> {
        self.slots.iter().filter(|s| s.present || !token_present).map(|s| s.id).collect()
    }

    /// A slot by id.
    pub fn get(&self, id: CK_SLOT_ID) -> P11Result<&Slot> {
        self.slots.iter().find(|s| s.id == id).ok_or(CKR_SLOT_ID_INVALID)
    }

    /// A slot by id, mutable.
    pub fn get_mut(&mut self, id: CK_SLOT_ID) -> P11Result<&mut Slot> {
        self.slots.iter_mut().find(|s| s.id == id).ok_or(CKR_SLOT_ID_INVALID)
    }

    /// A slot whose token is present.
    pub fn present(&self, id: CK_SLOT_ID) -> P11Result<&Slot> {
        let slot = self.get(id)?;
        if slot.present { Ok(slot) } else { Err(CKR_TOKEN_NOT_PRESENT) }
    }

    /// A slot whose token is present, mutable.
    pub fn present_mut(&mut self, id: CK_SLOT_ID) -> P11Result<&mut Slot> {
        let slot = self.get_mut(id)?;
        if slot.present { Ok(slot) } else { Err(CKR_TOKEN_NOT_PRESENT) }
    }

    /// Takes one pending event: the slot that changed.
    pub fn take_event(&mut self) -> Option<CK_SLOT_ID> {
        let slot = self.slots.iter_mut().find(|s| s.event_pending)?;
        slot.event_pending = false;
        Some(slot.id)
    }

    /// Whether the agent's carriers were listed at least once.
    pub fn listed_once(&self) -> bool {
        self.listed_once
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ukey_api::{CarrierId, CarrierKind};

    fn carrier(serial: &str) -> CarrierInfo {
        CarrierInfo {
            id: CarrierId::new(CarrierKind::Soft, &[serial]),
            kind: CarrierKind::Soft,
            label: serial.into(),
            manufacturer: "ukey".into(),
            model: "soft".into(),
            serial: serial.into(),
            location: "/tmp".into(),
            atr: None,
            usb: None,
            catalog_entry: None,
            software: true,
            read_only: false,
            initialized: true,
        }
    }

    #[test]
    fn slots_are_stable_across_removal_and_reinsertion() {
        let mut t = SlotTable::default();
        assert!(t.update(vec![carrier("a"), carrier("b")]).is_empty());
        assert_eq!(t.ids(true), vec![1, 2]);
        assert_eq!(t.take_event(), None, "the first listing is the starting state");

        assert_eq!(t.update(vec![carrier("b")]), vec![1]);
        assert_eq!(t.ids(true), vec![2]);
        assert_eq!(t.ids(false), vec![1, 2]);
        assert_eq!(t.present(1).err(), Some(CKR_TOKEN_NOT_PRESENT));
        assert_eq!(t.take_event(), Some(1));
        assert_eq!(t.take_event(), None);

        t.update(vec![carrier("c"), carrier("a"), carrier("b")]);
        assert_eq!(t.ids(true), vec![1, 2, 3]);
        assert_eq!(t.get(3).unwrap().carrier.serial, "c");
        assert_eq!(t.take_event(), Some(1));
        assert_eq!(t.take_event(), Some(3));
        assert_eq!(t.get(9).err(), Some(CKR_SLOT_ID_INVALID));
    }
}
