//! Every HID failure becomes a contract error here, in one place: a device that went away is
//! `TokenRemoved`, a silent one `Timeout`, a refused node `PermissionDenied` with the fix, a
//! device that breaks the framing `Device` with what exactly was wrong.

use ukey_api::Error;

use crate::device::DeviceError;
use crate::exchange::LinkError;
use crate::framing::err;

/// What to do when the device node cannot be opened.
pub const PERMISSION_HINT: &str = "install ukey's udev rules so the logged-in user may open the token (`ukey catalog udev`, see udev/README.md), \
     then unplug and re-insert it; `ukey doctor` checks this";

/// A link failure on the device at `location`, as a contract error.
pub fn link(e: LinkError, location: &str) -> Error {
    match e {
        LinkError::Device(d) => device(d, location),
        LinkError::Timeout(m) => Error::Timeout(format!("HID device {location}: {m}")),
        LinkError::Reported { code: err::CHANNEL_BUSY } => {
            Error::Busy(format!("HID device {location} is serving another program"))
        }
        LinkError::Reported { code: err::LOCK_REQUIRED } => {
            Error::Busy(format!("HID device {location} is locked by another program"))
        }
        LinkError::Framing(f) => Error::Device(format!("HID device {location}: {f}")),
        e @ (LinkError::Reported { .. } | LinkError::Protocol(_)) => {
            Error::Device(format!("HID device {location}: {e}"))
        }
    }
}

/// A device I/O failure, as a contract error.
pub fn device(e: DeviceError, location: &str) -> Error {
    match e {
        DeviceError::Gone => Error::TokenRemoved,
        DeviceError::PermissionDenied(m) => Error::PermissionDenied(format!("{location}: {m}; {PERMISSION_HINT}")),
        DeviceError::Io(m) => Error::Device(format!("HID device {location}: {m}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::FramingError;

    #[test]
    fn each_failure_maps_to_an_actionable_error() {
        assert!(matches!(link(LinkError::Device(DeviceError::Gone), "/dev/hidraw0"), Error::TokenRemoved));
        assert!(matches!(link(LinkError::Timeout("x".into()), "p"), Error::Timeout(_)));
        assert!(matches!(link(LinkError::Reported { code: err::CHANNEL_BUSY }, "p"), Error::Busy(_)));
        let e = link(LinkError::Framing(FramingError::WrongReportSize { got: 12 }), "/dev/hidraw0");
        assert!(matches!(&e, Error::Device(m) if m.contains("12-byte") && m.contains("/dev/hidraw0")), "{e}");
        let e = device(DeviceError::PermissionDenied("EACCES".into()), "/dev/hidraw0");
        assert!(matches!(&e, Error::PermissionDenied(m) if m.contains("udev")), "{e}");
    }
}
