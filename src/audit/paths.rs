//! Where audit logs live.
//!
//! - A holder's uses (their agent and their CLI share one log): `UKEY_AUDIT_DIR`, else
//!   `$XDG_STATE_HOME/ukey/audit`, else `~/.local/state/ukey/audit`. The holder owns it (0700);
//!   forwarding puts a copy beyond their reach.
//! - Helpdesk actions: the system audit directory ([`crate::policy::paths::SystemPaths::audit`]:
//!   `/var/log/ukey`, or `$UKEY_SYSTEM_DIR/audit`), owned by root.

use std::path::PathBuf;

/// The holder's audit directory, or `None` when neither `UKEY_AUDIT_DIR`, `XDG_STATE_HOME` nor
/// `HOME` says where it is.
pub fn user_audit_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("UKEY_AUDIT_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    crate::config::state_home().map(|s| s.join("ukey").join("audit"))
}
