//! Are ukey's udev rules installed, and do they cover every USB carrier of the catalog? The
//! installed file is compared with the rules rendered from the catalog now, rule by rule
//! (comments and the header's file list aside).

use std::collections::BTreeSet;
use std::path::PathBuf;

use ukey_catalog::udev::{RULES_FILE_NAME, render};

use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "udev-rules";

/// How to install the rules.
pub const INSTALL_HINT: &str = "install ukey's udev rules: `ukey catalog udev --out /etc/udev/rules.d/70-ukey.rules` \
     (as root), then `sudo udevadm control --reload && sudo udevadm trigger`, and re-insert the key (udev/README.md)";

/// The installed rules file, first in the search order.
pub fn installed_file(env: &Environment<'_>) -> Option<PathBuf> {
    env.udev_rules_dirs.iter().map(|d| d.join(RULES_FILE_NAME)).find(|p| p.is_file())
}

fn rule_lines(text: &str) -> BTreeSet<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
}

/// Compares the installed rules with the catalog's.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let expected = rule_lines(&render(&env.catalog));
    let Some(file) = installed_file(env) else {
        let searched: Vec<String> = env.udev_rules_dirs.iter().map(|d| d.display().to_string()).collect();
        return vec![Finding::warn(
            ID,
            format!(
                "ukey's udev rules ({RULES_FILE_NAME}) are not installed (looked in {}): only root may open carriers",
                searched.join(", ")
            ),
            INSTALL_HINT,
        )];
    };
    let installed = match std::fs::read_to_string(&file) {
        Ok(text) => rule_lines(&text),
        Err(e) => {
            return vec![Finding::warn(ID, format!("{} cannot be read: {e}", file.display()), INSTALL_HINT)];
        }
    };
    let missing: Vec<&String> = expected.difference(&installed).collect();
    if missing.is_empty() {
        return vec![Finding::ok(
            ID,
            format!("{} is installed and covers every USB carrier of the catalog", file.display()),
        )];
    }
    vec![Finding::warn(
        ID,
        format!(
            "{} is installed but older than the catalog: {} rule(s) are missing (carriers added since it was \
             generated cannot be opened without root)",
            file.display(),
            missing.len()
        ),
        format!(
            "regenerate it: `ukey catalog udev --out {}` (as root), then reload udev and re-insert the key",
            file.display()
        ),
    )]
}
