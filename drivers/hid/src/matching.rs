//! Which HID devices are carriers: those whose USB vendor and product id name a catalog entry
//! with `interface = "hid"`, on an interface that may carry APDUs. The entry says which framing
//! the device speaks and which card application holds its keys.

use std::collections::BTreeSet;

use ukey_catalog::{Application, Catalog, Interface};

use crate::framing::Framing;
use crate::source::{FIDO_USAGE_PAGE, HidDeviceInfo};

/// A HID interface the catalog knows as a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The interface.
    pub device: HidDeviceInfo,
    /// The catalog entry's id.
    pub entry: String,
    /// Manufacturer, from the catalog.
    pub manufacturer: String,
    /// Model, from the catalog.
    pub model: String,
    /// The framing, or why ukey cannot speak the one the entry names.
    pub framing: Result<Framing, String>,
    /// Card applications of the model.
    pub applications: Vec<Application>,
}

impl Candidate {
    /// A key that changes when a different device appears at the same path between two looks
    /// (hidraw numbers are reused).
    pub fn identity(&self) -> (String, u16, u16, Option<String>) {
        (self.device.path.clone(), self.device.vendor_id, self.device.product_id, self.device.serial.clone())
    }
}

/// The catalog's HID carriers among `devices`, one per path. When a device offers a FIDO
/// interface and others, and its entry uses the CTAPHID framing, only the FIDO interface is
/// taken.
pub fn candidates(catalog: &Catalog, devices: &[HidDeviceInfo]) -> Vec<Candidate> {
    let mut seen = BTreeSet::new();
    let mut found: Vec<Candidate> = Vec::new();
    for device in devices {
        if !device.may_carry_apdus() || !seen.insert(device.path.clone()) {
            continue;
        }
        let Some(entry) = catalog.match_usb(device.vendor_id, device.product_id) else { continue };
        if entry.interface != Interface::Hid {
            continue;
        }
        let framing = match &entry.hid_framing {
            Some(f) => Framing::for_catalog(f).map_err(|e| e.to_string()),
            None => Err(format!("catalog entry {} names no hid_framing", entry.id)),
        };
        found.push(Candidate {
            device: device.clone(),
            entry: entry.id.clone(),
            manufacturer: entry.manufacturer.clone(),
            model: entry.model.clone(),
            framing,
            applications: entry.applications.clone(),
        });
    }
    // Same physical device (ids and serial), CTAPHID framing: prefer its FIDO interface.
    let fido_devices: BTreeSet<(u16, u16, Option<String>)> = found
        .iter()
        .filter(|c| c.device.usage_page == FIDO_USAGE_PAGE)
        .map(|c| (c.device.vendor_id, c.device.product_id, c.device.serial.clone()))
        .collect();
    found.retain(|c| {
        let key = (c.device.vendor_id, c.device.product_id, c.device.serial.clone());
        c.device.usage_page == FIDO_USAGE_PAGE || c.framing != Ok(Framing::CtaphidMsg) || !fido_devices.contains(&key)
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use ukey_catalog::{CatalogDirs, load};

    fn catalog_with(toml: &str) -> (Catalog, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cat = dir.path().join("catalog.d");
        std::fs::create_dir_all(&cat).unwrap();
        std::fs::write(cat.join("test.toml"), toml).unwrap();
        let (catalog, problems) = load(&CatalogDirs::new(Some(cat), None));
        assert!(problems.iter().all(|p| !p.to_string().contains("test.toml")), "{problems:?}");
        (catalog, dir)
    }

    const ENTRIES: &str = r#"
[[carrier]]
id = "test-hid-piv"
manufacturer = "Test"
model = "HID PIV token"
interface = "hid"
applications = ["piv"]
usb = [{ vendor = 0x1209, product = 0x0001 }]
hid_framing = "ctaphid-msg"
sources = ["test"]
[carrier.compliance]
compliant = false
reason = "test"

[[carrier]]
id = "test-hid-vendor"
manufacturer = "Test"
model = "vendor-framed token"
interface = "hid"
applications = ["vendor"]
usb = [{ vendor = 0x1209, product = 0x0002 }]
hid_framing = "vendor:acme"
sources = ["test"]
[carrier.compliance]
compliant = false
reason = "test"

[[carrier]]
id = "test-ccid"
manufacturer = "Test"
model = "CCID token"
interface = "ccid"
applications = ["piv"]
usb = [{ vendor = 0x1209, product = 0x0003 }]
sources = ["test"]
[carrier.compliance]
compliant = false
reason = "test"
"#;

    fn dev(path: &str, product: u16, usage_page: u16) -> HidDeviceInfo {
        HidDeviceInfo {
            path: path.into(),
            vendor_id: 0x1209,
            product_id: product,
            serial: Some("S1".into()),
            manufacturer: None,
            product: None,
            usage_page,
            usage: 1,
            interface: 0,
        }
    }

    #[test]
    fn only_hid_catalog_entries_on_apdu_interfaces_match() {
        let (catalog, _dir) = catalog_with(ENTRIES);
        let devices = [
            dev("/dev/hidraw0", 0x0001, FIDO_USAGE_PAGE),
            dev("/dev/hidraw0", 0x0001, FIDO_USAGE_PAGE), // a second usage of the same node
            dev("/dev/hidraw1", 0x0001, 0x0001),          // its keyboard interface
            dev("/dev/hidraw2", 0x0002, 0xFF00),
            dev("/dev/hidraw3", 0x0003, FIDO_USAGE_PAGE), // a CCID model's FIDO interface
            dev("/dev/hidraw4", 0x0009, FIDO_USAGE_PAGE), // unknown to the catalog
        ];
        let found = candidates(&catalog, &devices);
        let paths: Vec<&str> = found.iter().map(|c| c.device.path.as_str()).collect();
        assert_eq!(paths, ["/dev/hidraw0", "/dev/hidraw2"]);
        assert_eq!(found[0].framing, Ok(Framing::CtaphidMsg));
        assert!(found[1].framing.as_ref().is_err_and(|e| e.contains("vendor:acme")));
    }

    #[test]
    fn fido_interface_is_preferred_for_ctaphid() {
        let (catalog, _dir) = catalog_with(ENTRIES);
        let devices = [dev("/dev/hidraw5", 0x0001, 0xFF00), dev("/dev/hidraw6", 0x0001, FIDO_USAGE_PAGE)];
        let found = candidates(&catalog, &devices);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].device.path, "/dev/hidraw6");
    }
}
