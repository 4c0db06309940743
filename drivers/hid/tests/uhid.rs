//! A real virtual HID device through the kernel's `/dev/uhid`: the test creates a device
//! (UHID_CREATE2, vendor-defined report descriptor with 64-byte reports), answers its output
//! reports with the CTAPHID device side running ukey's virtual PIV card, finds it through
//! hidapi's enumeration, and drives the PIV carrier through the real hidraw node — then
//! destroys the device mid-use and expects `TokenRemoved`.
//!
//! It needs a kernel with `/dev/uhid` (and root), which this project's CI machines do not have
//! (no uhid, no loadable modules). The crate's build script looks for `/dev/uhid`: where it is
//! missing, this test is reported as *ignored* with the reason — not run, never a pass it did
//! not earn — and on a machine with uhid it runs with every `cargo test -p ukey-hid`.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use rustix::fs::{Mode, OFlags};
use ukey_api::{Driver, Error, KeyAlgorithm, Mechanism};
use ukey_hid::emulator::VirtualHidToken;
use ukey_hid::hidapi_device::HidapiSource;
use ukey_hid::{DeviceSource, HidDevice, HidDriver};

const UHID: &str = "/dev/uhid";

// struct uhid_event (linux/uhid.h), packed: u32 type + the largest request (create2: 4372).
const EVENT_LEN: usize = 4 + 4372;
const UHID_DESTROY: u32 = 1;
const UHID_OUTPUT: u32 = 6;
const UHID_GET_REPORT: u32 = 9;
const UHID_GET_REPORT_REPLY: u32 = 10;
const UHID_CREATE2: u32 = 11;
const UHID_INPUT2: u32 = 12;
const UHID_SET_REPORT: u32 = 13;
const UHID_SET_REPORT_REPLY: u32 = 14;
const BUS_USB: u16 = 0x03;

/// Vendor-defined page 0xFF00, one application collection with a 64-byte input and a 64-byte
/// output report, no report ids.
const REPORT_DESCRIPTOR: &[u8] = &[
    0x06, 0x00, 0xFF, // Usage Page (Vendor Defined 0xFF00)
    0x09, 0x01, // Usage (1)
    0xA1, 0x01, // Collection (Application)
    0x09, 0x20, //   Usage (Input data)
    0x15, 0x00, //   Logical Minimum (0)
    0x26, 0xFF, 0x00, //   Logical Maximum (255)
    0x75, 0x08, //   Report Size (8)
    0x95, 0x40, //   Report Count (64)
    0x81, 0x02, //   Input (Data, Var, Abs)
    0x09, 0x21, //   Usage (Output data)
    0x15, 0x00, 0x26, 0xFF, 0x00, 0x75, 0x08, 0x95, 0x40, //
    0x91, 0x02, //   Output (Data, Var, Abs)
    0xC0, // End Collection
];

fn create2_event(name: &str, vendor: u16, product: u16, serial: &str) -> Vec<u8> {
    let mut ev = vec![0u8; EVENT_LEN];
    ev[..4].copy_from_slice(&UHID_CREATE2.to_le_bytes());
    let mut at = 4;
    let mut put = |bytes: &[u8], width: usize| {
        ev[at..at + bytes.len().min(width)].copy_from_slice(&bytes[..bytes.len().min(width)]);
        at += width;
    };
    put(name.as_bytes(), 128);
    put(b"ukey-test", 64);
    put(serial.as_bytes(), 64);
    put(&(REPORT_DESCRIPTOR.len() as u16).to_le_bytes(), 2);
    put(&BUS_USB.to_le_bytes(), 2);
    put(&u32::from(vendor).to_le_bytes(), 4);
    put(&u32::from(product).to_le_bytes(), 4);
    put(&1u32.to_le_bytes(), 4); // version
    put(&0u32.to_le_bytes(), 4); // country
    put(REPORT_DESCRIPTOR, 4096);
    ev
}

fn input2_event(report: &[u8]) -> Vec<u8> {
    let mut ev = Vec::with_capacity(6 + report.len());
    ev.extend_from_slice(&UHID_INPUT2.to_le_bytes());
    ev.extend_from_slice(&(report.len() as u16).to_le_bytes());
    ev.extend_from_slice(report);
    ev
}

/// The uhid device: a pump thread answers output reports through the emulated token's device
/// side (which runs the virtual PIV card) and feeds its answers back as input reports.
struct UhidDevice {
    fd: Arc<rustix::fd::OwnedFd>,
    stop: Arc<AtomicBool>,
    pump: Option<JoinHandle<()>>,
}

impl UhidDevice {
    fn create(token: VirtualHidToken, vendor: u16, product: u16, serial: &str) -> Self {
        let fd = rustix::fs::open(UHID, OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())
            .unwrap_or_else(|e| panic!("open {UHID}: {e} (run as root, or give the user access to {UHID})"));
        let fd = Arc::new(fd);
        rustix::io::write(&*fd, &create2_event("ukey test HID PIV token", vendor, product, serial))
            .expect("UHID_CREATE2");
        let stop = Arc::new(AtomicBool::new(false));
        let pump = {
            let (fd, stop) = (fd.clone(), stop.clone());
            std::thread::spawn(move || pump(&fd, &stop, token))
        };
        UhidDevice { fd, stop, pump: Some(pump) }
    }

    fn destroy(&mut self) {
        if self.pump.is_none() {
            return;
        }
        let _ = rustix::io::write(&*self.fd, &UHID_DESTROY.to_le_bytes());
        self.stop.store(true, Ordering::SeqCst);
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
    }
}

impl Drop for UhidDevice {
    fn drop(&mut self) {
        self.destroy();
    }
}

fn pump(fd: &rustix::fd::OwnedFd, stop: &AtomicBool, token: VirtualHidToken) {
    let mut device_side = token.open();
    let mut buf = vec![0u8; EVENT_LEN + 64];
    while !stop.load(Ordering::SeqCst) {
        let n = match rustix::io::read(fd, &mut buf) {
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN) => {
                // Nothing from the kernel: wait briefly (this is the device's idle loop).
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(e) => panic!("reading {UHID}: {e}"),
        };
        let event = &buf[..n];
        let kind = u32::from_le_bytes(event[..4].try_into().unwrap());
        match kind {
            UHID_OUTPUT => {
                // struct uhid_output_req: data[4096], size (u16), rtype.
                let size = usize::from(u16::from_le_bytes([event[4 + 4096], event[4 + 4097]]));
                let mut report = &event[4..4 + size.min(4096)];
                // Unnumbered reports arrive with the report-id byte 0 in front.
                if report.len() == 65 && report[0] == 0 {
                    report = &report[1..];
                }
                device_side.write_report(report).expect("emulated device side");
                while let Ok(Some(answer)) = device_side.read_report(Duration::ZERO) {
                    rustix::io::write(fd, &input2_event(&answer)).expect("UHID_INPUT2");
                }
            }
            UHID_GET_REPORT | UHID_SET_REPORT => {
                // Not supported by this device: answer EIO so the kernel does not wait.
                let id = &event[4..8];
                let reply = if kind == UHID_GET_REPORT { UHID_GET_REPORT_REPLY } else { UHID_SET_REPORT_REPLY };
                let mut ev = reply.to_le_bytes().to_vec();
                ev.extend_from_slice(id);
                ev.extend_from_slice(&5u16.to_le_bytes());
                rustix::io::write(fd, &ev).expect("report reply");
            }
            _ => {}
        }
    }
}

#[test]
#[cfg_attr(
    uhid_missing,
    ignore = "not run: this kernel has no /dev/uhid (CONFIG_UHID); run as root on a machine with uhid"
)]
fn virtual_hid_device_through_uhid_and_hidapi() {
    assert!(
        Path::new(UHID).exists(),
        "this kernel has no {UHID}, so no virtual HID device can be created: load the uhid module (modprobe uhid)"
    );
    let serial = format!("ukey-{}", std::process::id());
    let piv = SharedPiv::new();
    let mut device = UhidDevice::create(piv.token("uhid-device-side"), VID, PID, &serial);

    // Found through hidapi's own enumeration (sysfs), within a deadline.
    let source = Arc::new(HidapiSource::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    let info = loop {
        let found = source.enumerate().expect("enumerate");
        if let Some(info) = found.into_iter().find(|d| d.serial.as_deref() == Some(serial.as_str())) {
            break info;
        }
        assert!(Instant::now() < deadline, "the uhid device did not show up in hidapi's enumeration within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((info.vendor_id, info.product_id), (VID, PID));
    assert!(info.path.starts_with("/dev/hidraw"), "{}", info.path);
    assert_eq!(info.usage_page, 0xFF00);

    // The driver finds it through the catalog and the PIV application works over hidraw.
    let (catalog, _dir) = hid_catalog();
    let driver = HidDriver::new(source, catalog, options()).with_timeouts(quick());
    let carriers = driver.carriers().expect("carriers");
    let carrier = carriers.iter().find(|c| c.info().location == info.path).expect("the uhid carrier");
    assert_eq!(carrier.info().catalog_entry.as_deref(), Some(ENTRY));
    let key = keygen(carrier.as_ref(), 0x9A, KeyAlgorithm::P256);
    sign_and_verify(carrier.as_ref(), &key, &Mechanism::EcdsaSha256, b"through /dev/uhid");

    device.destroy();
    let err = carrier.objects().unwrap_err();
    assert!(matches!(err, Error::TokenRemoved), "{err:?}");
}
