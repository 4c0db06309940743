//! Do the PKCS#11 modules ukey would use load? The same discovery and loading as the PKCS#11
//! driver (configuration, p11-kit registrations, `UKEY_PKCS11_MODULES`): each module is really
//! opened and `C_Initialize`d, so a missing file, a file that is not a library, a library that
//! is not PKCS#11 and a module whose own configuration is broken are each told apart.

use ukey_pkcs11::{ModuleReport, Pkcs11Driver};

use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "pkcs11";

/// What to do about a module that did not load, by who named it.
fn fix_for(env: &Environment<'_>, module: &ModuleReport) -> String {
    let path = module.path.display();
    let first = if module.source == "config" {
        let file =
            env.config_file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| "the config file".into());
        format!("fix the path or remove the [[pkcs11.modules]] entry for {path} in {file}")
    } else if module.source.starts_with('$') {
        format!("fix or unset {} (it names {path})", ukey_pkcs11::MODULES_ENV)
    } else if let Some(file) = module.source.strip_prefix("p11-kit ") {
        format!("reinstall the package that registered it, or remove the registration {file} (as root)")
    } else {
        format!("install the vendor's middleware that provides {path}")
    };
    format!("{first}; `ukey modules` shows every module and why it did or did not load")
}

/// One finding per module found, and one per registration discovery skipped.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let driver = Pkcs11Driver::with_options(&env.pkcs11, &[], env.pkcs11_options);
    let modules = driver.modules();
    let mut out = Vec::new();
    if modules.is_empty() {
        out.push(Finding::ok(
            ID,
            "no PKCS#11 module is configured or registered with p11-kit; ukey reaches smart cards and HID keys \
             itself, and a vendor module is needed only for carriers the catalog marks as such",
        ));
    }
    for module in &modules {
        let subject = module.path.display().to_string();
        // A module left out on purpose is as fine as one that loaded.
        let finding = if module.loaded || module.skipped {
            Finding::ok(ID, format!("{} (from {}) {}", module.name, module.source, module.message))
        } else {
            Finding::fail(
                ID,
                format!(
                    "the PKCS#11 module {} (from {}) does not load: {}",
                    module.name, module.source, module.message
                ),
                fix_for(env, module),
            )
        };
        out.push(finding.about(subject));
    }
    for note in driver.notes().iter().filter(|n| !n.ok) {
        out.push(
            Finding::warn(
                ID,
                format!("a PKCS#11 module registration is not used: {}", note.message),
                "fix or remove that registration (p11-kit's `*.module` files), or name the module in the [pkcs11] \
                 section of ukey's config file",
            )
            .about(note.subject.clone()),
        );
    }
    out
}
