//! The `[pkcs11]` section of ukey's configuration: which modules to load and how to treat each.
//!
//! ```toml
//! [pkcs11]
//! p11kit = true                # also load modules registered with p11-kit (default)
//! poll_interval_ms = 500       # hot-plug polling when a module has no slot events
//! init_timeout_ms = 5000       # a module that has not started by then is reported and left alone
//!
//! [[pkcs11.modules]]
//! path = "/usr/lib/softhsm/libsofthsm2.so"
//!
//! [[pkcs11.modules]]
//! path = "/opt/vendor/lib/libgm3000.so"
//! name = "GM3000"
//! keep_login = false
//! sm2 = { profile = "sw-sm2-digest" }   # or explicit numbers, see `Sm2VendorConfig`
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sm2::Sm2VendorConfig;

/// Default hot-plug polling interval.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 500;

/// Default deadline for a module's start-up calls (`C_Initialize`, `C_GetInfo`, `C_GetSlotList`).
/// Healthy modules answer in milliseconds; one that talks to a slow reader may take a second.
pub const DEFAULT_INIT_TIMEOUT_MS: u64 = 5000;

/// The driver's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Modules named by the person or the installer, loaded first and in this order.
    pub modules: Vec<ModuleConfig>,
    /// Also load the modules registered with p11-kit, so a vendor module installed the
    /// distribution way is found without configuration.
    pub p11kit: bool,
    /// How often the hot-plug watcher rescans slots when a module reports no slot events.
    pub poll_interval_ms: u64,
    /// How long each module may take to start before it is reported as hung and left alone, so
    /// one vendor module that never returns cannot hang ukey.
    pub init_timeout_ms: u64,
}

impl Default for Pkcs11Config {
    fn default() -> Self {
        Pkcs11Config {
            modules: Vec::new(),
            p11kit: true,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            init_timeout_ms: DEFAULT_INIT_TIMEOUT_MS,
        }
    }
}

impl Pkcs11Config {
    /// The start-up deadline of each module (at least 10 ms).
    pub fn init_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.init_timeout_ms.max(10))
    }
}

impl Pkcs11Config {
    /// A configuration that loads exactly these modules and nothing registered elsewhere (tests,
    /// benchmarks, and the CLI when a URI names its module).
    pub fn only(paths: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        Pkcs11Config {
            modules: paths.into_iter().map(|p| ModuleConfig::new(p.into())).collect(),
            p11kit: false,
            ..Default::default()
        }
    }
}

/// One module and its per-module options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// Path of the PKCS#11 library.
    pub path: PathBuf,
    /// A name for `ukey modules`; the file name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Stay logged in between operations instead of logging out after each. Off by default: the
    /// agent's policy turns it on for a session, never the driver on its own.
    #[serde(default)]
    pub keep_login: bool,
    /// The vendor-defined SM2 numbers this module uses, when it offers SM2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm2: Option<Sm2VendorConfig>,
}

impl ModuleConfig {
    /// A module with default options.
    pub fn new(path: PathBuf) -> Self {
        ModuleConfig { path, name: None, keep_login: false, sm2: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_round_trips_with_defaults() {
        let cfg: Pkcs11Config = serde_json::from_str(
            r#"{"modules":[{"path":"/x.so","sm2":{"sign_mechanism":2147516672,"input":"digest"}}]}"#,
        )
        .unwrap();
        assert!(cfg.p11kit);
        assert_eq!(cfg.poll_interval_ms, DEFAULT_POLL_INTERVAL_MS);
        assert_eq!(cfg.init_timeout_ms, DEFAULT_INIT_TIMEOUT_MS);
        assert_eq!(cfg.modules[0].path, PathBuf::from("/x.so"));
        assert!(!cfg.modules[0].keep_login);
        let again: Pkcs11Config = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(serde_json::from_str::<Pkcs11Config>(r#"{"modlues":[]}"#).is_err());
    }
}
