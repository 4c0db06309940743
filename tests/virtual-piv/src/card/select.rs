//! SELECT (INS A4) of the PIV application by its AID (SP 800-73-4 Part 2 §3.1.1).

use super::VirtualPiv;
use crate::PIV_AID;
use crate::objects;
use crate::status::Sw;

/// Shortest AID prefix accepted: the NIST RID alone.
const MIN_AID_LEN: usize = 5;

impl VirtualPiv {
    /// Selects by DF name: the full AID, or any prefix of it from the RID on (partial selection,
    /// as hosts use "A0 00 00 03 08 00 00 10 00" without the version). Answers the application
    /// property template and clears the security status. An unknown AID is `6A82` and leaves the
    /// current selection as it was.
    pub(super) fn select(&mut self, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if p1 != 0x04 || (p2 != 0x00 && p2 != 0x0C) {
            return Err(Sw::WRONG_P1P2);
        }
        if data.len() < MIN_AID_LEN || data.len() > PIV_AID.len() || !PIV_AID.starts_with(data) {
            return Err(Sw::NOT_FOUND);
        }
        self.session.selected = true;
        self.session.clear_security();
        self.session.chain = None;
        if p2 == 0x0C {
            // "No response data" requested.
            return Ok(Vec::new());
        }
        Ok(objects::application_property_template(self.state.mgmt_algorithm))
    }
}
