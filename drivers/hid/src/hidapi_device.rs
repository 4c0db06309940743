//! Real HID devices through hidapi's pure-Rust Linux backend (hidraw nodes found through sysfs,
//! no libudev or libusb needed): [`HidapiSource`] enumerates and opens them, [`HidapiDevice`] is
//! one open device behind the [`HidDevice`] trait.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hidapi::{HidApi, HidError};
use ukey_api::{Error, Result};

use crate::device::{DeviceError, HidDevice};
use crate::errors;
use crate::source::{DeviceSource, HidDeviceInfo};

/// Largest report read: larger than any report of the framings ukey speaks, so an oversized
/// report is seen whole and refused by its size instead of being cut to fit.
const READ_BUFFER: usize = 1024;

/// HID devices as hidapi sees them.
#[derive(Default)]
pub struct HidapiSource {
    api: Mutex<Option<HidApi>>,
}

impl HidapiSource {
    /// A source; hidapi is initialised on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

fn describe(info: &hidapi::DeviceInfo) -> Option<HidDeviceInfo> {
    let path = info.path().to_str().ok()?.to_string();
    Some(HidDeviceInfo {
        path,
        vendor_id: info.vendor_id(),
        product_id: info.product_id(),
        serial: info.serial_number().filter(|s| !s.is_empty()).map(str::to_string),
        manufacturer: info.manufacturer_string().filter(|s| !s.is_empty()).map(str::to_string),
        product: info.product_string().filter(|s| !s.is_empty()).map(str::to_string),
        usage_page: info.usage_page(),
        usage: info.usage(),
        interface: info.interface_number(),
    })
}

impl DeviceSource for HidapiSource {
    fn enumerate(&self) -> Result<Vec<HidDeviceInfo>> {
        let mut slot = self.api.lock().unwrap_or_else(PoisonError::into_inner);
        let api = match slot.as_mut() {
            Some(api) => {
                api.refresh_devices().map_err(|e| Error::Device(format!("listing HID devices: {e}")))?;
                api
            }
            None => slot.insert(HidApi::new().map_err(|e| Error::Device(format!("starting hidapi: {e}")))?),
        };
        let mut out: Vec<HidDeviceInfo> = Vec::new();
        // hidapi lists a node once per top-level usage; the first is the interface's own.
        for info in api.device_list().filter_map(describe) {
            if !out.iter().any(|d| d.path == info.path) {
                out.push(info);
            }
        }
        Ok(out)
    }

    fn open(&self, info: &HidDeviceInfo) -> Result<Box<dyn HidDevice>> {
        Ok(Box::new(HidapiDevice::open(&info.path)?))
    }
}

/// One open hidraw device.
pub struct HidapiDevice {
    device: hidapi::HidDevice,
    path: String,
    node: PathBuf,
}

impl HidapiDevice {
    /// Opens the hidraw node at `path` for reading and writing.
    pub fn open(path: &str) -> Result<Self> {
        let node = PathBuf::from(path);
        let c_path = CString::new(path).map_err(|_| Error::InvalidInput(format!("HID path {path:?} contains NUL")))?;
        // hidapi's context is only an enumeration cache; opening needs no devices listed.
        let api = hidapi_context()?;
        let device = api.open_path(&c_path).map_err(|e| errors::device(open_failure(&node, &e), path))?;
        Ok(HidapiDevice { device, path: path.to_string(), node })
    }
}

fn hidapi_context() -> Result<HidApi> {
    HidApi::new().map_err(|e| Error::Device(format!("starting hidapi: {e}")))
}

/// Why opening failed, told apart by trying the node ourselves (hidapi reports only text).
fn open_failure(node: &Path, e: &HidError) -> DeviceError {
    match std::fs::OpenOptions::new().read(true).write(true).open(node) {
        Err(io) if io.kind() == std::io::ErrorKind::NotFound => DeviceError::Gone,
        Err(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            DeviceError::PermissionDenied(format!("{} cannot be opened for reading and writing", node.display()))
        }
        Err(io) => DeviceError::Io(format!("{e} ({io})")),
        Ok(_) => DeviceError::Io(format!("{e} (is {} a hidraw node?)", node.display())),
    }
}

/// A failure during a transfer: the device is gone when its node is, or when the system says
/// the device is no longer there.
fn transfer_failure(node: &Path, e: HidError) -> DeviceError {
    if !node.exists() {
        return DeviceError::Gone;
    }
    let gone_errnos =
        [rustix::io::Errno::NODEV, rustix::io::Errno::NXIO, rustix::io::Errno::IO, rustix::io::Errno::PIPE]
            .map(|e| e.raw_os_error());
    match &e {
        HidError::IoError { error } if error.raw_os_error().is_some_and(|n| gone_errnos.contains(&n)) => {
            DeviceError::Gone
        }
        HidError::IoError { error } if error.kind() == std::io::ErrorKind::PermissionDenied => {
            DeviceError::PermissionDenied(error.to_string())
        }
        // hidapi's words for POLLHUP / POLLERR on the node.
        HidError::HidApiError { message } if message.contains("disconnected") => DeviceError::Gone,
        _ => DeviceError::Io(e.to_string()),
    }
}

impl HidDevice for HidapiDevice {
    fn write_report(&mut self, report: &[u8]) -> Result<(), DeviceError> {
        // Report id 0 (the device has unnumbered reports), then the report.
        let mut buf = Vec::with_capacity(report.len() + 1);
        buf.push(0);
        buf.extend_from_slice(report);
        let result = self.device.write(&buf);
        zeroize::Zeroize::zeroize(&mut buf);
        match result {
            Ok(n) if n == report.len() + 1 => Ok(()),
            Ok(n) => Err(DeviceError::Io(format!("wrote {n} of {} bytes of a report", report.len() + 1))),
            Err(e) => Err(transfer_failure(&self.node, e)),
        }
    }

    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, DeviceError> {
        // Round up, so a wait of less than a millisecond is not a busy poll.
        let millis = timeout.as_micros().div_ceil(1000);
        let millis = i32::try_from(millis).unwrap_or(i32::MAX);
        let mut buf = vec![0u8; READ_BUFFER];
        match self.device.read_timeout(&mut buf, millis) {
            Ok(0) => Ok(None),
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e) => Err(transfer_failure(&self.node, e)),
        }
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn lock_path(&self) -> Option<&Path> {
        Some(&self.node)
    }
}
