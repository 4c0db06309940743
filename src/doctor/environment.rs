//! What the doctor looks at, with every path overridable (see the table in [`super`]).

use std::path::{Path, PathBuf};

use ukey_catalog::{Catalog, CatalogDirs, CatalogProblem};

use crate::config::Config;
use crate::registry::Inventory;

/// pcscd's client socket when `PCSCLITE_CSOCK_NAME` is not set.
pub const DEFAULT_PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";
/// Where udev rules may be installed, most specific first.
pub const DEFAULT_UDEV_RULES_DIRS: [&str; 3] = ["/etc/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d"];

/// Lists the carriers present (the certificate check opens them).
pub type CarrierLister<'a> = Box<dyn Fn() -> Inventory + 'a>;

/// The machine as the checks see it.
pub struct Environment<'a> {
    /// The unit's directory (`/etc/ukey`): `policy.toml`, `catalog.d/`.
    pub system_dir: PathBuf,
    /// The catalog, loaded from the seed and the system and user directories.
    pub catalog: Catalog,
    /// Problems met loading the catalog.
    pub catalog_problems: Vec<CatalogProblem>,
    /// The sysfs root (`/sys`).
    pub sysfs_root: PathBuf,
    /// The device-node root (`/dev`).
    pub dev_root: PathBuf,
    /// Directories where `70-ukey.rules` may be installed.
    pub udev_rules_dirs: Vec<PathBuf>,
    /// Extra directories searched first for PKCS#11 modules.
    pub module_path: Vec<PathBuf>,
    /// pcscd's socket.
    pub pcscd_socket: PathBuf,
    /// Directories searched for programs (`PATH` plus the sbin directories).
    pub program_dirs: Vec<PathBuf>,
    /// The agent's runtime directory from the config file, if set there.
    pub agent_runtime_dir: Option<PathBuf>,
    /// The config file read, for fixes that point into it.
    pub config_file: Option<PathBuf>,
    /// The `[pkcs11]` configuration (which modules to load).
    pub pkcs11: ukey_pkcs11::Pkcs11Config,
    /// What else ukey runs, for PKCS#11 discovery (ukey's own PC/SC driver).
    pub pkcs11_options: ukey_pkcs11::DiscoveryOptions,
    /// The soft token store, when the soft token is switched on.
    pub soft_dir: Option<PathBuf>,
    /// The carriers present now.
    pub carriers: CarrierLister<'a>,
    /// The holder's audit log (`UKEY_AUDIT_DIR`, else under `XDG_STATE_HOME` or `HOME`).
    pub audit_dir: Option<PathBuf>,
}

fn var_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn var_list(name: &str) -> Option<Vec<PathBuf>> {
    let value = std::env::var_os(name).filter(|v| !v.is_empty())?;
    Some(std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()).collect())
}

fn program_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = var_list("PATH").unwrap_or_default();
    // pcscd lives in sbin, which a holder's PATH often leaves out.
    for extra in ["/usr/sbin", "/sbin", "/usr/local/sbin"] {
        let p = PathBuf::from(extra);
        if !dirs.contains(&p) {
            dirs.push(p);
        }
    }
    dirs
}

impl<'a> Environment<'a> {
    /// The machine as ukey's configuration and the environment's overrides describe it.
    pub fn from_config(config: &Config, carriers: CarrierLister<'a>) -> Self {
        let dirs = CatalogDirs::from_env();
        let (catalog, catalog_problems) = ukey_catalog::load(&dirs);
        Environment {
            system_dir: var_path("UKEY_SYSTEM_DIR").unwrap_or_else(|| PathBuf::from(ukey_catalog::DEFAULT_SYSTEM_DIR)),
            catalog,
            catalog_problems,
            sysfs_root: var_path("UKEY_SYSFS_ROOT").unwrap_or_else(|| PathBuf::from("/sys")),
            dev_root: var_path("UKEY_DEV_ROOT").unwrap_or_else(|| PathBuf::from("/dev")),
            udev_rules_dirs: var_list("UKEY_UDEV_RULES_DIRS")
                .unwrap_or_else(|| DEFAULT_UDEV_RULES_DIRS.iter().map(PathBuf::from).collect()),
            module_path: var_list("UKEY_PKCS11_MODULE_PATH").unwrap_or_default(),
            pcscd_socket: var_path("PCSCLITE_CSOCK_NAME").unwrap_or_else(|| PathBuf::from(DEFAULT_PCSCD_SOCKET)),
            program_dirs: program_dirs(),
            agent_runtime_dir: config.file.agent.runtime_dir.clone(),
            config_file: config.config_file.clone(),
            pkcs11: config.file.pkcs11.clone(),
            pkcs11_options: ukey_pkcs11::DiscoveryOptions { native_pcsc: crate::registry::selects(config, "pcsc") },
            soft_dir: config.soft_enabled.then(|| config.soft_dir.clone()),
            carriers,
            audit_dir: crate::audit::paths::user_audit_dir(),
        }
    }

    /// Everything under `root` (unit tests): empty trees, the seed catalog, no carriers.
    pub fn for_tests(root: &Path) -> Self {
        let (catalog, catalog_problems) = ukey_catalog::load(&CatalogDirs::seed_only());
        Environment {
            system_dir: root.join("etc"),
            catalog,
            catalog_problems,
            sysfs_root: root.join("sys"),
            dev_root: root.join("dev"),
            udev_rules_dirs: vec![root.join("rules.d")],
            module_path: Vec::new(),
            pcscd_socket: root.join("pcscd.comm"),
            program_dirs: vec![root.join("bin")],
            agent_runtime_dir: Some(root.join("run")),
            config_file: None,
            pkcs11: ukey_pkcs11::Pkcs11Config::only(Vec::<PathBuf>::new()),
            pkcs11_options: ukey_pkcs11::DiscoveryOptions::default(),
            soft_dir: Some(root.join("soft")),
            carriers: Box::new(|| Inventory { carriers: Vec::new(), problems: Vec::new() }),
            audit_dir: Some(root.join("audit")),
        }
    }

    /// The program `name` in [`Environment::program_dirs`], if installed.
    pub fn find_program(&self, name: &str) -> Option<PathBuf> {
        self.program_dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
    }
}
