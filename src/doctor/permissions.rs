//! Can the current user open the device nodes of each plugged-in carrier (`/dev/bus/usb/BBB/DDD`
//! for CCID and vendor-module tokens, `/dev/hidrawN` for HID tokens)? Without ukey's udev rules
//! only root can.

use std::path::Path;

use rustix::fs::Access;

use super::udev_rules;
use super::usb::known_devices;
use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "permissions";

fn can_read_write(node: &Path) -> Result<(), String> {
    rustix::fs::access(node, Access::READ_OK | Access::WRITE_OK).map_err(|e| e.to_string())
}

/// One finding per device node of each plugged-in known carrier.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let devices = match known_devices(env) {
        Ok(d) => d,
        Err(why) => {
            return vec![Finding::warn(
                ID,
                format!("cannot tell which carriers are plugged in: {why}"),
                "see the usb check",
            )];
        }
    };
    let rules = udev_rules::installed_file(env);
    let fix = match &rules {
        Some(file) => format!(
            "ukey's rules are installed ({}), so: unplug and re-insert the key, and make sure you are logged in at \
             this computer's seat (the uaccess tag serves local sessions only); if the rules are old, `ukey doctor` \
             says so under udev-rules",
            file.display()
        ),
        None => udev_rules::INSTALL_HINT.to_string(),
    };
    let uid = rustix::process::getuid().as_raw();
    let mut out = Vec::new();
    for (device, entry) in &devices {
        let mut nodes = Vec::new();
        if let Some(node) = device.usb_node(&env.dev_root) {
            nodes.push(node);
        }
        nodes.extend(device.hidraw.iter().map(|h| env.dev_root.join(h)));
        for node in nodes {
            let subject = node.display().to_string();
            let finding = if !node.exists() {
                Finding::warn(
                    ID,
                    format!("{} ({}) has no device node {subject}", entry.display_name(), device.ids()),
                    "unplug and re-insert the key; if the node still does not appear, check `dmesg` for USB errors",
                )
            } else {
                match can_read_write(&node) {
                    Ok(()) => {
                        Finding::ok(ID, format!("you (uid {uid}) may open {subject} of {}", entry.display_name()))
                    }
                    Err(e) => Finding::fail(
                        ID,
                        format!(
                            "you (uid {uid}) may not open {subject} of {} for reading and writing: {e}",
                            entry.display_name()
                        ),
                        fix.clone(),
                    ),
                }
            };
            out.push(finding.about(subject));
        }
    }
    if out.is_empty() {
        out.push(Finding::ok(ID, "no plugged-in carrier whose device nodes need checking"));
    }
    out
}
