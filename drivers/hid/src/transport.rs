//! A HID token as an ISO 7816 card: [`HidTransport`] implements `ukey-iso7816`'s
//! [`CardTransport`], so the PIV application (and any other card application written against
//! that trait) runs over HID unchanged.
//!
//! Each transaction takes exclusive use of the device ([`crate::lock`]), makes sure a CTAPHID
//! channel is open (allocating one, or resynchronising it after a broken exchange), and carries
//! each APDU in one `MSG` message. APDUs are short (at most 261 bytes): an extended APDU may be
//! up to 65 544 bytes, more than the 7 609 a CTAPHID message holds, and the APDU layer's command
//! chaining and `61xx` GET RESPONSE carry long data in short APDUs on every card.

use ukey_api::{Error, Result};
use ukey_iso7816::{ApduPipe, CardTransport};

use crate::device::{DeviceError, HidDevice};
use crate::errors;
use crate::exchange::{self, LinkError, Timeouts};
use crate::framing::{Framing, cmd, err};
use crate::lock;

/// A HID token reached through one open device.
pub struct HidTransport {
    device: Box<dyn HidDevice>,
    location: String,
    framing: Framing,
    timeouts: Timeouts,
    channel: Option<u32>,
    /// The last exchange broke off: stale packets may be in flight, resynchronise first.
    needs_resync: bool,
}

impl HidTransport {
    /// A transport over `device` with `framing`; nothing is sent until the first transaction.
    pub fn new(device: Box<dyn HidDevice>, framing: Framing, timeouts: Timeouts) -> Self {
        let location = device.path().to_string();
        HidTransport { device, location, framing, timeouts, channel: None, needs_resync: false }
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    fn link_error(&mut self, e: LinkError) -> Error {
        if !matches!(e, LinkError::Device(DeviceError::Gone)) {
            self.needs_resync = true;
        }
        errors::link(e, &self.location)
    }

    /// The channel to talk on: the open one, resynchronised if the last exchange broke off, or a
    /// newly allocated one.
    fn channel(&mut self) -> Result<u32> {
        if let Some(cid) = self.channel {
            if !self.needs_resync {
                return Ok(cid);
            }
            match exchange::resync(self.device.as_mut(), cid, self.timeouts) {
                Ok(()) => {
                    self.needs_resync = false;
                    return Ok(cid);
                }
                // The device forgot the channel: allocate a new one below.
                Err(LinkError::Reported { code: err::INVALID_CHANNEL }) => self.channel = None,
                Err(e) => return Err(self.link_error(e)),
            }
        }
        let cid = exchange::allocate_channel(self.device.as_mut(), self.timeouts).map_err(|e| self.link_error(e))?;
        self.channel = Some(cid);
        self.needs_resync = false;
        Ok(cid)
    }

    /// One APDU in one `MSG` exchange. When the device no longer knows our channel (another
    /// program's `INIT` may evict it), it executed nothing: a new channel is allocated and the
    /// APDU sent once more.
    fn transmit_apdu(&mut self, apdu: &[u8]) -> Result<Vec<u8>> {
        let Framing::CtaphidMsg = self.framing;
        let cid = self.channel()?;
        match exchange::call(self.device.as_mut(), cid, cmd::MSG, apdu, self.timeouts) {
            Ok(answer) => Ok(answer),
            Err(LinkError::Reported { code: err::INVALID_CHANNEL }) => {
                log::debug!("{}: channel {cid:08X} was dropped by the device; allocating a new one", self.location);
                self.channel = None;
                let cid = self.channel()?;
                exchange::call(self.device.as_mut(), cid, cmd::MSG, apdu, self.timeouts).map_err(|e| self.link_error(e))
            }
            Err(e) => Err(self.link_error(e)),
        }
    }
}

struct Pipe<'a>(&'a mut HidTransport);

impl ApduPipe for Pipe<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>> {
        self.0.transmit_apdu(apdu)
    }
}

impl CardTransport for HidTransport {
    /// HID tokens have no answer-to-reset; they are recognised by USB id instead.
    fn atr(&self) -> Vec<u8> {
        Vec::new()
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn supports_extended(&self) -> bool {
        false
    }

    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn ApduPipe) -> Result<()>) -> Result<()> {
        let _guard = lock::acquire(&self.location, self.device.lock_path(), self.timeouts.lock)?;
        self.channel()?;
        work(&mut Pipe(self))
    }
}
