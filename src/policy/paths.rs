//! Where the unit's custody policy lives on a machine.
//!
//! ```text
//! /etc/ukey/                 root-owned, world-readable (0755); UKEY_SYSTEM_DIR overrides it
//!   policy.toml              the policy (absent: personal mode)
//!   custody/                 one custody record per carrier, <serial>.toml (0644)
//!   anchors/                 the unit's trust-anchor certificates for custody tags (PEM)
//!   catalog.d/               the unit's carrier-catalog entries (compliance decisions)
//! /var/log/ukey/             the helpdesk's audit log (root, 0750)
//! /run/ukey/in-use/          cross-account in-use markers (1777, sticky)
//! ```
//!
//! With `UKEY_SYSTEM_DIR=R` (tests, or a unit with another layout) everything moves under `R`:
//! `R/policy.toml`, `R/custody`, `R/anchors`, `R/catalog.d`, `R/audit`, `R/run/in-use`.

use std::path::{Path, PathBuf};

/// The system directory when `UKEY_SYSTEM_DIR` is not set.
pub const DEFAULT_SYSTEM_DIR: &str = "/etc/ukey";

/// Every system-wide path of the custody policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPaths {
    /// The configuration directory.
    pub root: PathBuf,
    /// `policy.toml`.
    pub policy_file: PathBuf,
    /// The custody records.
    pub custody: PathBuf,
    /// Trust anchors for custody tags.
    pub anchors: PathBuf,
    /// The helpdesk audit log.
    pub audit: PathBuf,
    /// In-use markers.
    pub in_use: PathBuf,
}

impl SystemPaths {
    /// From `UKEY_SYSTEM_DIR`, else the standard locations.
    pub fn from_env() -> Self {
        match std::env::var_os("UKEY_SYSTEM_DIR").filter(|v| !v.is_empty()) {
            Some(root) => SystemPaths::under(Path::new(&root)),
            None => SystemPaths::standard(),
        }
    }

    /// The standard layout: `/etc/ukey`, `/var/log/ukey`, `/run/ukey/in-use`.
    pub fn standard() -> Self {
        let root = PathBuf::from(DEFAULT_SYSTEM_DIR);
        SystemPaths {
            policy_file: root.join("policy.toml"),
            custody: root.join("custody"),
            anchors: root.join("anchors"),
            audit: PathBuf::from("/var/log/ukey"),
            in_use: PathBuf::from("/run/ukey/in-use"),
            root,
        }
    }

    /// Everything under one directory.
    pub fn under(root: &Path) -> Self {
        SystemPaths {
            policy_file: root.join("policy.toml"),
            custody: root.join("custody"),
            anchors: root.join("anchors"),
            audit: root.join("audit"),
            in_use: root.join("run").join("in-use"),
            root: root.to_path_buf(),
        }
    }

    /// The unit's catalog directory.
    pub fn catalog(&self) -> PathBuf {
        self.root.join(ukey_catalog::CATALOG_DIR_NAME)
    }
}
