//! GET DATA (INS CB) and PUT DATA (INS DB) on PIV data objects (SP 800-73-4 Part 2 §3.1.2,
//! §3.3.2).

use super::VirtualPiv;
use crate::objects::{self, DISCOVERY, MAX_OBJECT_LEN};
use crate::status::Sw;
use crate::tlv;

/// The tag list tag of GET DATA / PUT DATA.
const TAG_LIST: u32 = 0x5C;
/// The data object wrapper tag.
const DATA_TAG: u32 = 0x53;

impl VirtualPiv {
    /// GET DATA: P1-P2 = 3FFF, data = `5C` with one tag. Answers `53 L content`, or the
    /// discovery object `7E` itself.
    pub(super) fn get_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if (p1, p2) != (0x3F, 0xFF) {
            return Err(Sw::WRONG_P1P2);
        }
        let tag = parse_tag_list(data)?;
        if tag == DISCOVERY {
            return Ok(objects::discovery());
        }
        if !objects::is_known_object(tag) {
            return Err(Sw::NOT_FOUND);
        }
        if objects::read_needs_pin(tag) && !self.session.pin_verified {
            return Err(Sw::SECURITY_STATUS);
        }
        let content = self.state.objects.get(&tag).ok_or(Sw::NOT_FOUND)?;
        Ok(tlv::encode(DATA_TAG, content))
    }

    /// PUT DATA: P1-P2 = 3FFF, data = `5C` tag then `53` content; needs the management key. An
    /// empty `53` deletes the object.
    pub(super) fn put_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if (p1, p2) != (0x3F, 0xFF) {
            return Err(Sw::WRONG_P1P2);
        }
        if !self.session.mgmt_authenticated {
            return Err(Sw::SECURITY_STATUS);
        }
        let (list, rest) = tlv::read(data).map_err(|_| Sw::WRONG_DATA)?;
        if list.tag != TAG_LIST {
            return Err(Sw::WRONG_DATA);
        }
        let tag = tag_from_bytes(list.value)?;
        let (object, rest) = tlv::read(rest).map_err(|_| Sw::WRONG_DATA)?;
        if object.tag != DATA_TAG || !rest.is_empty() || !objects::is_known_object(tag) {
            return Err(Sw::WRONG_DATA);
        }
        if object.value.len() > MAX_OBJECT_LEN {
            return Err(Sw::NO_SPACE);
        }
        if object.value.is_empty() {
            self.state.objects.remove(&tag);
        } else {
            self.state.objects.insert(tag, object.value.to_vec());
        }
        self.persist()?;
        Ok(Vec::new())
    }
}

/// The single tag of a `5C` tag list that must fill the data field.
fn parse_tag_list(data: &[u8]) -> Result<u32, Sw> {
    let (list, rest) = tlv::read(data).map_err(|_| Sw::WRONG_DATA)?;
    if list.tag != TAG_LIST || !rest.is_empty() {
        return Err(Sw::WRONG_DATA);
    }
    tag_from_bytes(list.value)
}

/// A tag as carried in a tag list: one byte (`7E`), two (`7F61`) or three (`5FC1xx`).
fn tag_from_bytes(bytes: &[u8]) -> Result<u32, Sw> {
    if bytes.is_empty() || bytes.len() > 3 {
        return Err(Sw::WRONG_DATA);
    }
    Ok(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}
