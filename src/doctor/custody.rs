//! The custody policy: which carriers are bound to whom. The policy engine is not part of this
//! build yet, so the check reports whether a policy file is installed and, when one is, that
//! this ukey cannot evaluate it.

use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "custody";

/// The policy file's name in the system directory.
const POLICY_FILE: &str = "policy.toml";

/// Reports the custody status.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let policy = env.system_dir.join(POLICY_FILE);
    if !policy.exists() {
        return vec![Finding::ok(
            ID,
            format!(
                "no custody policy installed ({} does not exist): ukey runs in personal mode, where each carrier \
                 may be used by whoever holds it",
                policy.display()
            ),
        )];
    }
    vec![Finding::warn(
        ID,
        format!("a custody policy is installed ({}) but this ukey build cannot evaluate it", policy.display()),
        "install a ukey release with custody policy support, or ask your helpdesk",
    )]
}
