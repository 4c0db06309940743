//! For each plugged-in carrier the catalog knows: is the vendor PKCS#11 module its entry names
//! installed? Modules are looked for in the usual library directories (and their `pkcs11/`
//! subdirectories, multiarch and `/opt/*/lib` included) and in p11-kit's module registrations.

use std::fs;
use std::path::{Path, PathBuf};

use ukey_catalog::{Application, Entry, Interface};

use super::usb::known_devices;
use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "modules";

/// p11-kit's module registration directories.
const P11KIT_DIRS: [&str; 2] = ["/etc/pkcs11/modules", "/usr/share/p11-kit/modules"];

fn subdirs_matching(parent: &Path, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(parent) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> =
        rd.filter_map(Result::ok).filter(|e| pred(&e.file_name().to_string_lossy())).map(|e| e.path()).collect();
    dirs.sort();
    dirs
}

/// Where modules are looked for, in order.
pub fn library_dirs(env: &Environment<'_>) -> Vec<PathBuf> {
    let mut base: Vec<PathBuf> = env.module_path.clone();
    for d in ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/usr/local/lib64"] {
        base.push(PathBuf::from(d));
    }
    for root in ["/usr/lib", "/lib"] {
        base.extend(subdirs_matching(Path::new(root), |n| n.ends_with("-linux-gnu") || n.ends_with("-linux-musl")));
    }
    for vendor in subdirs_matching(Path::new("/opt"), |_| true) {
        base.push(vendor.join("lib"));
        base.push(vendor.join("lib64"));
    }
    let mut dirs = Vec::new();
    for d in base {
        dirs.push(d.join("pkcs11"));
        dirs.push(d);
    }
    dirs
}

/// Module paths registered with p11-kit (`module:` lines of `*.module` files).
fn p11kit_modules() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = P11KIT_DIRS.iter().map(PathBuf::from).collect();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".config/pkcs11/modules"));
    }
    let mut out = Vec::new();
    for dir in dirs {
        for file in subdirs_matching(&dir, |n| n.ends_with(".module")) {
            let Ok(text) = fs::read_to_string(&file) else { continue };
            for line in text.lines() {
                if let Some(value) = line.trim().strip_prefix("module:") {
                    out.push(PathBuf::from(value.trim()));
                }
            }
        }
    }
    out
}

/// Where module `name` is installed, if anywhere.
pub fn find_module(env: &Environment<'_>, name: &str) -> Option<PathBuf> {
    let dirs = library_dirs(env);
    if let Some(found) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(found);
    }
    p11kit_modules().into_iter().find_map(|registered| {
        let matches = registered.file_name().is_some_and(|f| f == name);
        if !matches {
            return None;
        }
        if registered.is_absolute() {
            return registered.is_file().then_some(registered);
        }
        dirs.iter().map(|d| d.join(&registered)).find(|p| p.is_file())
    })
}

/// Whether ukey needs the vendor module to reach this model (it speaks PIV itself).
fn module_required(entry: &Entry) -> bool {
    entry.interface == Interface::Pkcs11Module || !entry.applications.contains(&Application::Piv)
}

/// One finding per plugged-in known carrier that names vendor modules.
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
    let mut out = Vec::new();
    for (device, entry) in devices.iter().filter(|(_, e)| !e.modules.linux.is_empty()) {
        let subject = format!("{} ({})", entry.display_name(), device.ids());
        let names = entry.modules.linux.join(", ");
        let found: Vec<PathBuf> = entry.modules.linux.iter().filter_map(|m| find_module(env, m)).collect();
        let finding = if let Some(path) = found.first() {
            Finding::ok(ID, format!("the vendor module of {} is installed: {}", entry.display_name(), path.display()))
        } else if !module_required(entry) {
            Finding::ok(
                ID,
                format!(
                    "the vendor module of {} ({names}) is not installed; ukey does not need it (it speaks the card's \
                     PIV application itself)",
                    entry.display_name()
                ),
            )
        } else {
            let generic: Vec<PathBuf> = entry.generic_modules.iter().filter_map(|m| find_module(env, m)).collect();
            let install = format!(
                "install the vendor's middleware for {} (it provides {names}) from the vendor or your unit's software \
                 channel; ukey looks in the library directories (and their pkcs11/ subdirectories), /opt/*/lib and \
                 p11-kit registrations, and in UKEY_PKCS11_MODULE_PATH",
                entry.display_name()
            );
            match generic.first() {
                Some(shared) => Finding::warn(
                    ID,
                    format!(
                        "the vendor module of {} ({names}) is not installed; the shared module {} may serve it instead",
                        entry.display_name(),
                        shared.display()
                    ),
                    install,
                ),
                None => Finding::fail(
                    ID,
                    format!(
                        "the vendor module of {} ({names}) is not installed: ukey cannot reach this carrier without it",
                        entry.display_name()
                    ),
                    install,
                ),
            }
        };
        out.push(finding.about(subject));
    }
    if out.is_empty() {
        out.push(Finding::ok(ID, "no plugged-in carrier needs a vendor PKCS#11 module"));
    }
    out
}
