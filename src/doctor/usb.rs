//! The USB devices that are (or look like) certificate carriers, and whether the catalog knows
//! them.

use ukey_catalog::Severity;

use super::sysfs::{UsbDevice, usb_devices};
use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "usb";

/// The plugged-in USB devices the catalog knows, with their entries.
pub fn known_devices<'e>(env: &'e Environment<'_>) -> Result<Vec<(UsbDevice, &'e ukey_catalog::Entry)>, String> {
    Ok(usb_devices(&env.sysfs_root)?
        .into_iter()
        .filter_map(|d| env.catalog.match_usb(d.vendor, d.product).map(|e| (d, e)))
        .collect())
}

/// One finding per carrier or carrier look-alike, plus catalog problems.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let errors = env.catalog_problems.iter().filter(|p| p.severity == Severity::Error).count();
    if errors > 0 {
        out.push(Finding::warn(
            ID,
            format!("{errors} catalog entr(ies) could not be loaded; the models they describe are not recognised"),
            "run `ukey catalog check` to see each problem with its file and line",
        ));
    }
    let devices = match usb_devices(&env.sysfs_root) {
        Ok(d) => d,
        Err(why) => {
            let fix = if env.sysfs_root.join("bus/usb").exists() {
                "run `lsusb` to see them, and `ukey doctor` as the holder who uses the key"
            } else {
                "this system has no USB bus (a container or virtual machine without USB pass-through): pass the key \
                 through to it, or run ukey where the key is plugged in"
            };
            out.push(Finding::warn(ID, format!("USB devices cannot be listed: {why}"), fix));
            return out;
        }
    };
    let mut carriers = 0;
    for device in &devices {
        let subject = format!("USB {} {}", device.name, device.ids());
        if let Some(entry) = env.catalog.match_usb(device.vendor, device.product) {
            carriers += 1;
            let compliance = if entry.is_compliant() { "a compliant carrier" } else { "not a compliant carrier" };
            out.push(
                Finding::ok(
                    ID,
                    format!(
                        "{} is {} ({}, reached through {}); {compliance}: {}",
                        device.label(),
                        entry.display_name(),
                        entry.id,
                        entry.interface,
                        entry.compliance.reason
                    ),
                )
                .about(subject),
            );
        } else if let Some(hint) = device.carrier_hint() {
            carriers += 1;
            out.push(
                Finding::warn(
                    ID,
                    format!(
                        "{} looks like a certificate carrier ({hint}) but the catalog does not know it",
                        device.label()
                    ),
                    format!(
                        "if it is a carrier your unit uses, add a catalog entry with `usb = [{{ vendor = 0x{:04x}, \
                         product = 0x{:04x} }}]` in {}/catalog.d/ (format: drivers/catalog/data/README.md)",
                        device.vendor,
                        device.product,
                        env.system_dir.display()
                    ),
                )
                .about(subject),
            );
        }
    }
    if carriers == 0 {
        out.push(Finding::warn(
            ID,
            format!("none of the {} USB device(s) plugged in is a known or likely certificate carrier", devices.len()),
            "plug in your key; if it is plugged in, `lsusb` shows its ids: add them to the catalog",
        ));
    }
    out
}
