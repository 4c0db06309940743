//! `ukey doctor`: checks everything a carrier needs to work on this machine and says, for each
//! problem, how to fix it.
//!
//! One check per file. Each check looks at one thing and returns its [`Finding`]s (at least
//! one); a check that fails, or even panics, becomes a finding of its own and never stops the
//! others. What the checks look at comes from [`Environment`], whose every path can be
//! overridden, so tests run the real checks against temporary trees:
//!
//! | variable | default | what |
//! |---|---|---|
//! | `UKEY_SYSTEM_DIR` | `/etc/ukey` | the unit's directory: `catalog.d/`, `policy.toml`, `custody/` |
//! | `UKEY_AUDIT_DIR` | `~/.local/state/ukey/audit` | the holder's audit log (the custody check) |
//! | `UKEY_CONFIG_DIR` | `~/.config/ukey` | the holder's catalog (`catalog.d/`) |
//! | `UKEY_SYSFS_ROOT` | `/sys` | where USB devices are listed (`bus/usb/devices/*`) |
//! | `UKEY_DEV_ROOT` | `/dev` | device nodes (`bus/usb/BBB/DDD`, `hidrawN`) |
//! | `UKEY_UDEV_RULES_DIRS` | `/etc/udev/rules.d:/usr/lib/udev/rules.d:/lib/udev/rules.d` | where `70-ukey.rules` may be installed |
//! | `UKEY_PKCS11_MODULE_PATH` | (none) | extra directories searched first for vendor PKCS#11 modules |
//! | `UKEY_PKCS11_MODULES` | (none) | the only PKCS#11 modules the `pkcs11` check loads (as the driver) |
//! | `UKEY_SOFT_DIR` | `~/.local/share/ukey/tokens` | the soft token store |
//! | `PCSCLITE_CSOCK_NAME` | `/run/pcscd/pcscd.comm` | pcscd's socket (libpcsclite reads the same variable) |
//! | `XDG_RUNTIME_DIR` | `/run/user/UID` | where the agent's socket is (`ukey/agent.sock`) |

pub mod agent;
pub mod cards;
pub mod certificates;
pub mod custody;
pub mod environment;
pub mod modules;
pub mod pcscd;
pub mod permissions;
pub mod pkcs11;
pub mod readers;
pub mod soft_store;
pub mod sysfs;
pub mod udev_rules;
pub mod usb;

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;

pub use environment::Environment;

/// How a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works.
    Ok,
    /// May be a problem, or something the holder should know.
    Warn,
    /// Broken: a carrier cannot work until it is fixed.
    Fail,
}

/// One result of one check. The JSON field names are part of ukey's interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check's stable id (`pcscd`, `readers`, `cards`, `usb`, `modules`, `pkcs11`,
    /// `permissions`, `udev-rules`, `agent`, `soft-store`, `custody`, `certificates`).
    pub check: &'static str,
    /// What the finding is about, for checks that report per item (a reader, a device, a
    /// certificate); absent for whole-machine findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// ok, warn or fail.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do about it (absent when there is nothing to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A finding that needs nothing done.
    pub fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Finding { check, subject: None, status: Status::Ok, message: message.into(), fix: None }
    }

    /// A warning with its fix.
    pub fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding { check, subject: None, status: Status::Warn, message: message.into(), fix: Some(fix.into()) }
    }

    /// A failure with its fix.
    pub fn fail(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding { check, subject: None, status: Status::Fail, message: message.into(), fix: Some(fix.into()) }
    }

    /// The same finding about `subject`.
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

/// A check: a stable id and the function that looks.
pub struct Check {
    /// Stable id.
    pub id: &'static str,
    /// What it looks at, for people.
    pub title: &'static str,
    /// Runs it.
    pub run: fn(&Environment<'_>) -> Vec<Finding>,
}

/// Every check, in the order a person would investigate: the services, the devices, the
/// software around them, then what the holder uses them for.
pub const CHECKS: &[Check] = &[
    Check { id: pcscd::ID, title: "PC/SC service", run: pcscd::check },
    Check { id: readers::ID, title: "smart card readers", run: readers::check },
    Check { id: cards::ID, title: "cards in the readers", run: cards::check },
    Check { id: usb::ID, title: "USB carriers", run: usb::check },
    Check { id: modules::ID, title: "vendor modules of plugged-in carriers", run: modules::check },
    Check { id: pkcs11::ID, title: "PKCS#11 modules", run: pkcs11::check },
    Check { id: permissions::ID, title: "device permissions", run: permissions::check },
    Check { id: udev_rules::ID, title: "ukey's udev rules", run: udev_rules::check },
    Check { id: agent::ID, title: "ukey agent", run: agent::check },
    Check { id: soft_store::ID, title: "software token store", run: soft_store::check },
    Check { id: custody::ID, title: "custody policy", run: custody::check },
    Check { id: certificates::ID, title: "certificate validity", run: certificates::check },
];

/// Runs one check; an empty answer or a panic becomes a finding.
pub fn run_check(check: &Check, env: &Environment<'_>) -> Vec<Finding> {
    match catch_unwind(AssertUnwindSafe(|| (check.run)(env))) {
        Ok(findings) if findings.is_empty() => vec![Finding::ok(check.id, "nothing to report")],
        Ok(findings) => findings,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            vec![Finding::fail(
                check.id,
                format!("the {} check crashed: {what}", check.title),
                "this is a bug in ukey; please report it with the output of `ukey doctor -vvv`",
            )]
        }
    }
}

/// Runs every check (or those named in `only`), each independently of the others.
pub fn run(env: &Environment<'_>, only: &[String]) -> Vec<Finding> {
    CHECKS
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| o == c.id))
        .flat_map(|c| run_check(c, env))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_check_is_a_finding_and_the_others_still_run() {
        fn boom(_: &Environment<'_>) -> Vec<Finding> {
            panic!("kaboom")
        }
        let env = Environment::for_tests(tempfile::tempdir().unwrap().path());
        let check = Check { id: "boom", title: "exploding", run: boom };
        let findings = run_check(&check, &env);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].status, Status::Fail);
        assert!(findings[0].message.contains("kaboom"));
        let custody = run(&env, &["custody".into()]);
        assert!(custody.iter().all(|f| f.check == "custody"));
    }

    #[test]
    fn check_ids_are_unique() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
    }
}
