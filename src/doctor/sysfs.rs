//! The USB devices plugged in, read from sysfs (`/sys/bus/usb/devices/*`): ids, names, the
//! classes of their interfaces, their hidraw nodes and whether a HID interface speaks FIDO.
//! Every read is bounded (small attribute files, two directory levels under each interface).

use std::fs;
use std::path::{Path, PathBuf};

/// USB interface class of smart card readers (CCID).
pub const CLASS_SMART_CARD: u8 = 0x0B;
/// USB interface class of HID devices.
pub const CLASS_HID: u8 = 0x03;
/// Largest attribute file read.
const MAX_ATTRIBUTE: u64 = 64 * 1024;

/// One USB device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbDevice {
    /// The sysfs name (`1-2`, `3-1.4`): where it is plugged in.
    pub name: String,
    /// Vendor id.
    pub vendor: u16,
    /// Product id.
    pub product: u16,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product_name: Option<String>,
    /// Bus number, for `/dev/bus/usb/BBB/DDD`.
    pub busnum: Option<u16>,
    /// Device number on the bus.
    pub devnum: Option<u16>,
    /// Classes of its interfaces.
    pub interface_classes: Vec<u8>,
    /// Its hidraw nodes (`hidraw3`).
    pub hidraw: Vec<String>,
    /// A HID interface's report descriptor names the FIDO usage page (0xF1D0).
    pub fido: bool,
}

impl UsbDevice {
    /// `1050:0407`.
    pub fn ids(&self) -> String {
        format!("{:04x}:{:04x}", self.vendor, self.product)
    }

    /// Manufacturer and product strings, or the ids.
    pub fn label(&self) -> String {
        match (&self.manufacturer, &self.product_name) {
            (Some(m), Some(p)) => format!("{m} {p} ({})", self.ids()),
            (None, Some(p)) => format!("{p} ({})", self.ids()),
            _ => self.ids(),
        }
    }

    /// The device's usbfs node under `dev_root`.
    pub fn usb_node(&self, dev_root: &Path) -> Option<PathBuf> {
        Some(dev_root.join("bus/usb").join(format!("{:03}", self.busnum?)).join(format!("{:03}", self.devnum?)))
    }

    /// Why it looks like a carrier, if it does: a CCID interface, or a FIDO HID interface.
    pub fn carrier_hint(&self) -> Option<&'static str> {
        if self.interface_classes.contains(&CLASS_SMART_CARD) {
            Some("it has a smart card (CCID) interface")
        } else if self.fido {
            Some("it has a FIDO HID interface, as security keys do")
        } else {
            None
        }
    }
}

fn read_attr(path: &Path) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_ATTRIBUTE {
        return None;
    }
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn read_hex16(path: &Path) -> Option<u16> {
    u16::from_str_radix(&read_attr(path)?, 16).ok()
}

fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())).collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether a HID report descriptor selects the FIDO usage page (`06 D0 F1`).
fn names_fido_page(descriptor: &[u8]) -> bool {
    descriptor.windows(3).any(|w| w == [0x06, 0xD0, 0xF1])
}

/// Every USB device under `sysfs_root`, sorted by name; `Err` when the directory cannot be read.
pub fn usb_devices(sysfs_root: &Path) -> Result<Vec<UsbDevice>, String> {
    let dir = sysfs_root.join("bus/usb/devices");
    let listing = fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut devices = Vec::new();
    for entry in listing.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Interfaces are `1-2:1.0`; root hubs are `usb1` (they have ids, but are not carriers).
        if name.contains(':') || name.starts_with("usb") {
            continue;
        }
        let path = entry.path();
        let (Some(vendor), Some(product)) = (read_hex16(&path.join("idVendor")), read_hex16(&path.join("idProduct")))
        else {
            continue;
        };
        let mut device = UsbDevice {
            name: name.clone(),
            vendor,
            product,
            manufacturer: read_attr(&path.join("manufacturer")),
            product_name: read_attr(&path.join("product")),
            busnum: read_attr(&path.join("busnum")).and_then(|v| v.parse().ok()),
            devnum: read_attr(&path.join("devnum")).and_then(|v| v.parse().ok()),
            interface_classes: Vec::new(),
            hidraw: Vec::new(),
            fido: false,
        };
        for (iface_name, iface) in entries(&path) {
            if !iface_name.starts_with(&format!("{name}:")) {
                continue;
            }
            let Some(class) = read_attr(&iface.join("bInterfaceClass")).and_then(|c| u8::from_str_radix(&c, 16).ok())
            else {
                continue;
            };
            device.interface_classes.push(class);
            if class != CLASS_HID {
                continue;
            }
            // The HID device under the interface (`0003:1050:0407.0001`) has the report
            // descriptor and the hidraw node.
            for (_, hid) in entries(&iface).into_iter().filter(|(n, _)| n.matches(':').count() == 2) {
                if let Ok(descriptor) = fs::read(hid.join("report_descriptor")) {
                    device.fido |= names_fido_page(&descriptor);
                }
                for (node, _) in entries(&hid.join("hidraw")) {
                    if node.starts_with("hidraw") {
                        device.hidraw.push(node);
                    }
                }
            }
        }
        device.interface_classes.sort_unstable();
        device.interface_classes.dedup();
        device.hidraw.sort();
        devices.push(device);
    }
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(devices)
}

/// Builds fake sysfs trees for unit tests.
#[cfg(test)]
pub mod fake {
    use std::fs;
    use std::path::Path;

    /// Writes a USB device `name` with these ids and interfaces (class per interface) under
    /// `sysfs_root`; a HID interface gets `hidraw` node `hidraw` and, if `fido`, a FIDO report
    /// descriptor.
    pub fn usb_device(
        sysfs_root: &Path,
        name: &str,
        (vendor, product): (u16, u16),
        (busnum, devnum): (u16, u16),
        interfaces: &[u8],
        hidraw: Option<(&str, bool)>,
    ) -> std::io::Result<()> {
        let dev = sysfs_root.join("bus/usb/devices").join(name);
        fs::create_dir_all(&dev)?;
        fs::write(dev.join("idVendor"), format!("{vendor:04x}\n"))?;
        fs::write(dev.join("idProduct"), format!("{product:04x}\n"))?;
        fs::write(dev.join("busnum"), format!("{busnum}\n"))?;
        fs::write(dev.join("devnum"), format!("{devnum}\n"))?;
        fs::write(dev.join("manufacturer"), "Test Maker\n")?;
        fs::write(dev.join("product"), format!("Token {product:04x}\n"))?;
        for (i, class) in interfaces.iter().enumerate() {
            let iface = dev.join(format!("{name}:1.{i}"));
            fs::create_dir_all(&iface)?;
            fs::write(iface.join("bInterfaceClass"), format!("{class:02x}\n"))?;
            if *class == super::CLASS_HID
                && let Some((node, fido)) = hidraw
            {
                let hid = iface.join(format!("0003:{vendor:04X}:{product:04X}.000{i}"));
                fs::create_dir_all(hid.join("hidraw").join(node))?;
                let page: &[u8] = if fido { &[0x06, 0xD0, 0xF1] } else { &[0x05, 0x01] };
                fs::write(hid.join("report_descriptor"), [page, &[0x09, 0x01, 0xA1, 0x01, 0xC0]].concat())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_interfaces_and_hidraw_nodes_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fake::usb_device(root, "1-2", (0x096e, 0x0807), (1, 5), &[CLASS_SMART_CARD], None).unwrap();
        fake::usb_device(
            root,
            "1-3",
            (0x1050, 0x0407),
            (1, 6),
            &[CLASS_HID, CLASS_SMART_CARD],
            Some(("hidraw2", true)),
        )
        .unwrap();
        fake::usb_device(root, "1-4", (0x046d, 0xc077), (1, 7), &[CLASS_HID], Some(("hidraw3", false))).unwrap();
        std::fs::create_dir_all(root.join("bus/usb/devices/usb1")).unwrap();
        let devices = usb_devices(root).unwrap();
        assert_eq!(devices.len(), 3);
        assert_eq!(devices[0].ids(), "096e:0807");
        assert_eq!(devices[0].carrier_hint(), Some("it has a smart card (CCID) interface"));
        assert_eq!(devices[0].usb_node(Path::new("/dev")), Some(PathBuf::from("/dev/bus/usb/001/005")));
        assert_eq!(devices[1].hidraw, ["hidraw2"]);
        assert!(devices[1].fido);
        assert_eq!(devices[2].carrier_hint(), None, "a mouse is not a carrier");
        assert!(usb_devices(&root.join("missing")).is_err());
    }
}
