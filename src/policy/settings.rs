//! The unit's policy file, `policy.toml` in the system directory.
//!
//! ```toml
//! mode = "deny"                 # unregistered carriers: "deny" (default) or "warn"
//! development = false           # true: non-compliant carriers (the software token) allowed, visibly
//! helpdesk_group = "ukey-helpdesk"  # members (and root) may write custody records
//! unit = "Finance Bureau"       # the unit's name, in reports and tags
//!
//! [audit]
//! forward = "syslog"            # "syslog" (RFC 5424 to /dev/log), "journald" or "none"
//! socket = "/dev/log"           # optional: another socket
//! rotate_mib = 64               # seal a log file at this size
//! ```
//!
//! No `policy.toml` at all means **personal mode**: every use works, and every use says that no
//! custody policy is in force. A `policy.toml` that cannot be read or parsed is NOT personal mode:
//! every use is refused until it is fixed (a typo must not switch enforcement off).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::forward::ForwardKind;

/// What happens to carriers with no custody record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnregisteredMode {
    /// Refused.
    #[default]
    Deny,
    /// Allowed, with a warning on every use and in the audit log.
    Warn,
}

impl UnregisteredMode {
    /// The name in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            UnregisteredMode::Deny => "deny",
            UnregisteredMode::Warn => "warn",
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSection {
    /// Forwarding target.
    pub forward: ForwardKind,
    /// Socket path, when not the target's default.
    pub socket: Option<PathBuf>,
    /// Rotation size in MiB.
    pub rotate_mib: Option<u64>,
}

/// `policy.toml` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// Unregistered carriers.
    pub mode: UnregisteredMode,
    /// Development mode: non-compliant carriers are allowed (and said to be).
    pub development: bool,
    /// The group whose members act as helpdesk (besides root).
    pub helpdesk_group: Option<String>,
    /// The unit's name.
    pub unit: Option<String>,
    /// Audit forwarding and rotation.
    pub audit: AuditSection,
}

/// The policy in force on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyState {
    /// No policy file: personal mode.
    Personal,
    /// A policy file, read.
    Enforced(PolicySettings),
    /// A policy file that cannot be used: everything is refused until it is fixed.
    Broken(String),
}

impl PolicyState {
    /// Reads the policy file.
    pub fn load(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => match toml::from_str::<PolicySettings>(&text) {
                Ok(s) => PolicyState::Enforced(s),
                Err(e) => PolicyState::Broken(format!(
                    "the custody policy {} is not valid ({}); every use is refused until the helpdesk fixes it",
                    path.display(),
                    e.to_string().trim()
                )),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PolicyState::Personal,
            Err(e) => PolicyState::Broken(format!(
                "the custody policy {} cannot be read ({e}); every use is refused until it is readable",
                path.display()
            )),
        }
    }

    /// The settings, when a valid policy is installed.
    pub fn settings(&self) -> Option<&PolicySettings> {
        match self {
            PolicyState::Enforced(s) => Some(s),
            _ => None,
        }
    }

    /// The mode name recorded in audit records.
    pub fn label(&self) -> &'static str {
        match self {
            PolicyState::Personal => "personal",
            PolicyState::Enforced(s) if s.development => "development",
            PolicyState::Enforced(_) => "enforced",
            PolicyState::Broken(_) => "broken",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_means_personal_and_a_typo_means_broken() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("policy.toml");
        assert_eq!(PolicyState::load(&p), PolicyState::Personal);
        std::fs::write(&p, "mode = \"warn\"\ndevelopment = true\n[audit]\nforward = \"syslog\"\n").unwrap();
        let PolicyState::Enforced(s) = PolicyState::load(&p) else { panic!("not read") };
        assert_eq!(s.mode, UnregisteredMode::Warn);
        assert!(s.development);
        assert_eq!(s.audit.forward, ForwardKind::Syslog);
        std::fs::write(&p, "mdoe = \"warn\"\n").unwrap();
        assert!(matches!(PolicyState::load(&p), PolicyState::Broken(m) if m.contains("mdoe")));
    }
}
