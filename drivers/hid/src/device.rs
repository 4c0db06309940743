//! The seam between the framing and whatever moves HID reports: a real device through hidapi
//! ([`crate::hidapi_device`]) or, in tests, an in-process token (`crate::emulator`). Everything
//! above this trait is the same for both.

use std::path::Path;
use std::time::Duration;

/// Why a report could not be moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The device is gone (unplugged, or its node disappeared).
    #[error("the HID device was removed")]
    Gone,
    /// The operating system refused access to the device node.
    #[error("access to the HID device was refused: {0}")]
    PermissionDenied(String),
    /// Any other failure, with the system's words.
    #[error("HID I/O error: {0}")]
    Io(String),
}

/// One open HID device that exchanges fixed-size reports. Reports are the bare report bytes:
/// no report-id prefix (an implementation for a device with numbered reports adds and strips
/// it).
pub trait HidDevice: Send {
    /// Sends one output report.
    fn write_report(&mut self, report: &[u8]) -> Result<(), DeviceError>;

    /// Waits at most `timeout` for one input report; `Ok(None)` when none came in time.
    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, DeviceError>;

    /// Where the device is (the hidraw node), for messages and carrier locations.
    fn path(&self) -> &str;

    /// A file every ukey process can `flock` for exclusive use of the device across processes
    /// (the hidraw node). `None` when there is no such file (in-process test devices).
    fn lock_path(&self) -> Option<&Path> {
        None
    }
}
