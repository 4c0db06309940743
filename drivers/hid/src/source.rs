//! Where HID devices come from: [`DeviceSource`] lists and opens them. The real source is
//! hidapi ([`crate::hidapi_device::HidapiSource`]); tests plug emulated tokens into their own
//! source. The driver and the hot-plug watcher see only this trait.

use ukey_api::Result;

use crate::device::HidDevice;

/// The FIDO alliance usage page (0xF1D0): the interface of a token that speaks CTAPHID.
pub const FIDO_USAGE_PAGE: u16 = 0xF1D0;

/// One HID interface of a device, as enumeration reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HidDeviceInfo {
    /// The hidraw node (`/dev/hidraw3`); unique while the device is plugged in.
    pub path: String,
    /// USB vendor id.
    pub vendor_id: u16,
    /// USB product id.
    pub product_id: u16,
    /// USB serial number string, when the device has one.
    pub serial: Option<String>,
    /// USB manufacturer string.
    pub manufacturer: Option<String>,
    /// USB product string.
    pub product: Option<String>,
    /// Top-level usage page of the interface's report descriptor (0 when unknown).
    pub usage_page: u16,
    /// Top-level usage.
    pub usage: u16,
    /// USB interface number (-1 when unknown).
    pub interface: i32,
}

impl HidDeviceInfo {
    /// Whether the interface may carry a framing of APDUs: the FIDO page, a vendor-defined page
    /// (0xFF00–0xFFFF), or unknown. Keyboards, mice and the like (standard pages) never do, so a
    /// token's keyboard interface (for one-time passwords) is never opened.
    pub fn may_carry_apdus(&self) -> bool {
        self.usage_page == 0 || self.usage_page == FIDO_USAGE_PAGE || self.usage_page >= 0xFF00
    }
}

/// Lists and opens HID devices.
pub trait DeviceSource: Send + Sync {
    /// The HID interfaces present now (one entry per path).
    fn enumerate(&self) -> Result<Vec<HidDeviceInfo>>;

    /// Opens one for reading and writing reports.
    fn open(&self, info: &HidDeviceInfo) -> Result<Box<dyn HidDevice>>;
}
