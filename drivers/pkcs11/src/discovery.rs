//! Which PKCS#11 modules to load: the configuration, p11-kit registrations, the carrier catalog,
//! or (for tests and scripts) the `UKEY_PKCS11_MODULES` environment variable.
//!
//! Discovery only finds paths; loading (and reporting what failed to load) is `module.rs`. The
//! same library reached through two paths (a symlink and its target) is loaded once, with the
//! options of the first source that named it: configuration before p11-kit before the catalog.

use std::fmt;
use std::path::{Path, PathBuf};

use log::debug;
use ukey_api::DriverStatus;

use crate::config::{ModuleConfig, Pkcs11Config};
use crate::sm2::Sm2VendorConfig;

/// Environment variable naming the only modules to load, `:`-separated. Meant for tests and
/// scripts: when set, neither the configuration's list nor p11-kit nor the catalog is consulted
/// (options for a listed path still come from the configuration).
pub const MODULES_ENV: &str = "UKEY_PKCS11_MODULES";

/// The program name p11-kit's `enable-in` / `disable-in` settings are matched against.
pub const PROGRAM_NAME: &str = "ukey";

/// Where a module came from, for `ukey modules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// `UKEY_PKCS11_MODULES`.
    Environment,
    /// The `[pkcs11]` configuration.
    Config,
    /// A p11-kit registration file.
    P11Kit(PathBuf),
    /// A carrier-catalog entry (its id).
    Catalog(String),
}

impl fmt::Display for ModuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleSource::Environment => write!(f, "${MODULES_ENV}"),
            ModuleSource::Config => f.write_str("config"),
            ModuleSource::P11Kit(file) => write!(f, "p11-kit {}", file.display()),
            ModuleSource::Catalog(entry) => write!(f, "catalog {entry}"),
        }
    }
}

/// A module to load: where, why, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    /// Path of the library as named by its source.
    pub path: PathBuf,
    /// A short name for people.
    pub name: String,
    /// Who named it.
    pub source: ModuleSource,
    /// Per-module options.
    pub options: ModuleConfig,
}

/// A module a carrier-catalog entry names for its carrier model (the hook the catalog fills in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogModule {
    /// The catalog entry's id.
    pub entry: String,
    /// A module file name (searched in the usual library directories) or an absolute path.
    pub module: String,
    /// The model's SM2 numbers, when the catalog knows them.
    pub sm2: Option<Sm2VendorConfig>,
}

/// Directories discovery reads; the defaults are the system's, tests pass temporary ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPaths {
    /// p11-kit registration directories, lowest priority first (a later file with the same
    /// name replaces an earlier one, as in p11-kit).
    pub p11kit_config_dirs: Vec<PathBuf>,
    /// Where relative module names are looked up.
    pub module_dirs: Vec<PathBuf>,
}

impl SearchPaths {
    /// The system's p11-kit directories and library directories, plus the user's own p11-kit
    /// directory (`$XDG_CONFIG_HOME/pkcs11/modules`, else `~/.config/pkcs11/modules`).
    pub fn system() -> Self {
        let mut config_dirs = vec![PathBuf::from("/usr/share/p11-kit/modules"), PathBuf::from("/etc/pkcs11/modules")];
        let user_config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config")));
        if let Some(dir) = user_config {
            config_dirs.push(dir.join("pkcs11/modules"));
        }
        let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
        SearchPaths {
            p11kit_config_dirs: config_dirs,
            module_dirs: vec![
                PathBuf::from(format!("{multiarch}/pkcs11")),
                PathBuf::from("/usr/lib64/pkcs11"),
                PathBuf::from("/usr/lib/pkcs11"),
                PathBuf::from(&multiarch),
                PathBuf::from("/usr/lib64"),
                PathBuf::from("/usr/lib"),
                PathBuf::from("/usr/local/lib"),
            ],
        }
    }
}

/// What discovery found: modules to load, and notes on registrations it skipped or could not use.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Modules to load, in order, one per library.
    pub modules: Vec<ModuleSpec>,
    /// Registrations that were skipped with the reason (shown by `ukey modules`).
    pub notes: Vec<DriverStatus>,
    /// Modules left out on purpose, with the reason (shown by `ukey modules` as skipped).
    pub skipped: Vec<(ModuleSpec, String)>,
}

/// What else ukey runs, which changes what discovery leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoveryOptions {
    /// ukey's own PC/SC driver runs: OpenSC's p11-kit registration is skipped (unless the
    /// configuration names that module), since both would reach the same cards.
    pub native_pcsc: bool,
}

/// OpenSC's PKCS#11 modules (`opensc-pkcs11.so`, `onepin-opensc-pkcs11.so`): generic PC/SC card
/// middleware, the same ground ukey's PC/SC driver covers.
pub fn is_opensc_module(path: &Path) -> bool {
    [path.to_path_buf(), identity(path)]
        .iter()
        .map(|p| module_name(p))
        .any(|name| name == "opensc-pkcs11" || name == "onepin-opensc-pkcs11")
}

/// Why OpenSC's registration is left out when ukey's PC/SC driver runs.
pub const OPENSC_SKIPPED: &str = "skipped: OpenSC's module reaches the same PC/SC cards as ukey's own PC/SC driver, so \
     each card would appear twice (and this module can hang in C_Initialize); to use it anyway, name it in a \
     [[pkcs11.modules]] entry of ukey's config, or leave `pcsc` out of `drivers`";

/// Finds the modules to load from every source. `env_modules` is the value of
/// [`MODULES_ENV`] (passed in so callers and tests decide where it comes from).
pub fn discover(
    config: &Pkcs11Config,
    catalog: &[CatalogModule],
    paths: &SearchPaths,
    env_modules: Option<&str>,
) -> Discovery {
    discover_with(config, catalog, paths, env_modules, DiscoveryOptions::default())
}

/// As [`discover`], knowing what else ukey runs ([`DiscoveryOptions`]).
pub fn discover_with(
    config: &Pkcs11Config,
    catalog: &[CatalogModule],
    paths: &SearchPaths,
    env_modules: Option<&str>,
    options: DiscoveryOptions,
) -> Discovery {
    let mut found = Discovery::default();
    if let Some(list) = env_modules.filter(|v| !v.trim().is_empty()) {
        for path in list.split(':').filter(|p| !p.trim().is_empty()) {
            let path = PathBuf::from(path.trim());
            let options = config.modules.iter().find(|m| m.path == path).cloned();
            push(&mut found, spec(path, ModuleSource::Environment, options));
        }
        return found;
    }
    for module in &config.modules {
        push(&mut found, spec(module.path.clone(), ModuleSource::Config, Some(module.clone())));
    }
    if config.p11kit {
        for registration in p11kit_registrations(paths, &mut found.notes) {
            let listed = found.modules.iter().any(|m| identity(&m.path) == identity(&registration.path));
            if options.native_pcsc && !listed && is_opensc_module(&registration.path) {
                debug!("{}: {OPENSC_SKIPPED}", registration.path.display());
                found.skipped.push((registration, OPENSC_SKIPPED.to_string()));
                continue;
            }
            push(&mut found, registration);
        }
    }
    for entry in catalog {
        match resolve_module_name(&entry.module, &paths.module_dirs) {
            Some(path) => {
                let mut options = ModuleConfig::new(path.clone());
                options.sm2 = entry.sm2.clone();
                push(&mut found, spec(path, ModuleSource::Catalog(entry.entry.clone()), Some(options)));
            }
            None => debug!("catalog entry {} names module {} which is not installed", entry.entry, entry.module),
        }
    }
    found
}

fn spec(path: PathBuf, source: ModuleSource, options: Option<ModuleConfig>) -> ModuleSpec {
    let options = options.unwrap_or_else(|| ModuleConfig::new(path.clone()));
    let name = options.name.clone().unwrap_or_else(|| module_name(&path));
    ModuleSpec { path, name, source, options }
}

/// The file name without `lib` and the extension: `libsofthsm2.so` → `softhsm2`.
pub fn module_name(path: &Path) -> String {
    let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or("module");
    let stem = stem.split(".so").next().unwrap_or(stem);
    let stem = stem.strip_suffix(".dylib").or_else(|| stem.strip_suffix(".dll")).unwrap_or(stem);
    stem.strip_prefix("lib").unwrap_or(stem).to_string()
}

/// Adds a module unless the same library (after following symlinks) is already listed.
fn push(found: &mut Discovery, spec: ModuleSpec) {
    let key = identity(&spec.path);
    if found.modules.iter().any(|m| identity(&m.path) == key) {
        debug!("{} ({}) is already listed; skipped", spec.path.display(), spec.source);
        return;
    }
    found.modules.push(spec);
}

fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Looks a module name up: absolute paths as they are, bare names in the module directories.
pub fn resolve_module_name(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = Path::new(name);
    if path.is_absolute() {
        return path.exists().then(|| path.to_path_buf());
    }
    dirs.iter().map(|d| d.join(path)).find(|p| p.exists())
}

/// One parsed p11-kit `.module` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct P11KitRegistration {
    /// The `module:` value as written.
    pub module: Option<String>,
    /// `enable-in:` program names, when present.
    pub enable_in: Option<Vec<String>>,
    /// `disable-in:` program names.
    pub disable_in: Vec<String>,
    /// `trust-policy: yes` marks a trust store (CA anchors), not a carrier module.
    pub trust_policy: bool,
}

/// Parses the `key: value` lines of a p11-kit module file (pkcs11.conf(5)); unknown keys are
/// ignored, as p11-kit does.
pub fn parse_p11kit_module(text: &str) -> P11KitRegistration {
    let mut reg = P11KitRegistration::default();
    let names = |v: &str| -> Vec<String> {
        v.split([',', ' ', '\t']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match key.trim() {
            "module" if !value.is_empty() => reg.module = Some(value.to_string()),
            "enable-in" => reg.enable_in = Some(names(value)),
            "disable-in" => reg.disable_in = names(value),
            "trust-policy" => reg.trust_policy = matches!(value, "yes" | "true"),
            _ => {}
        }
    }
    reg
}

/// Reads the p11-kit registration directories and returns the modules ukey should load, noting
/// registrations it skipped.
fn p11kit_registrations(paths: &SearchPaths, notes: &mut Vec<DriverStatus>) -> Vec<ModuleSpec> {
    // Later directories override earlier ones by file name, as p11-kit does for user config.
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for dir in &paths.p11kit_config_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "module"))
            .collect();
        names.sort();
        for file in names {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            files.retain(|(n, _)| *n != name);
            files.push((name, file));
        }
    }
    let mut specs = Vec::new();
    for (_, file) in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                notes.push(note(&file, format!("cannot read this p11-kit registration: {e}")));
                continue;
            }
        };
        let reg = parse_p11kit_module(&text);
        if reg.trust_policy {
            debug!("{}: a trust-policy module (CA anchors), not a carrier; skipped", file.display());
            continue;
        }
        if reg.disable_in.iter().any(|p| p == PROGRAM_NAME)
            || reg.enable_in.as_ref().is_some_and(|list| !list.iter().any(|p| p == PROGRAM_NAME))
        {
            debug!("{}: disabled for {PROGRAM_NAME} by enable-in/disable-in", file.display());
            continue;
        }
        let Some(module) = reg.module else {
            notes.push(note(&file, "this p11-kit registration names no `module:`; skipped".into()));
            continue;
        };
        match resolve_module_name(&module, &paths.module_dirs) {
            Some(path) => specs.push(spec(path, ModuleSource::P11Kit(file.clone()), None)),
            None => notes.push(note(
                &file,
                format!("registers module `{module}`, which is not installed; install it or remove the registration"),
            )),
        }
    }
    specs
}

fn note(file: &Path, message: String) -> DriverStatus {
    DriverStatus { subject: file.display().to_string(), ok: false, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn parses_p11kit_files() {
        let reg = parse_p11kit_module(
            "# comment\nmodule: opensc-pkcs11.so\ndisable-in: firefox, ukey\nenable-in: a b\ntrust-policy: no\nx-init-reserved:\n",
        );
        assert_eq!(reg.module.as_deref(), Some("opensc-pkcs11.so"));
        assert_eq!(reg.disable_in, vec!["firefox", "ukey"]);
        assert_eq!(reg.enable_in, Some(vec!["a".to_string(), "b".to_string()]));
        assert!(!reg.trust_policy);
        assert!(parse_p11kit_module("trust-policy: yes").trust_policy);
    }

    #[test]
    fn finds_config_p11kit_and_catalog_modules_once_each() {
        let tmp = tempfile::tempdir().unwrap();
        let libs = tmp.path().join("lib");
        write(&libs, "libvendor.so", "not really a library");
        write(&libs, "libother.so", "");
        write(&libs, "libcat.so", "");
        std::os::unix::fs::symlink(libs.join("libvendor.so"), libs.join("alias.so")).unwrap();
        let system = tmp.path().join("share");
        let user = tmp.path().join("user");
        write(&system, "vendor.module", "module: libvendor.so\n");
        write(&system, "trust.module", "module: libother.so\ntrust-policy: yes\n");
        write(&system, "off.module", "module: libother.so\ndisable-in: ukey\n");
        write(&system, "gone.module", "module: libmissing.so\n");
        write(&system, "empty.module", "# nothing\n");
        write(&system, "readme.txt", "module: libother.so\n");
        // The user's file with the same name replaces the system one.
        write(&system, "mine.module", "module: libmissing-too.so\n");
        write(&user, "mine.module", "module: libother.so\nenable-in: ukey\n");
        let paths = SearchPaths { p11kit_config_dirs: vec![system, user], module_dirs: vec![libs.clone()] };
        let config = Pkcs11Config { modules: vec![ModuleConfig::new(libs.join("alias.so"))], ..Default::default() };
        let catalog = vec![
            CatalogModule { entry: "gm3000".into(), module: "libcat.so".into(), sm2: None },
            CatalogModule { entry: "absent".into(), module: "libnothere.so".into(), sm2: None },
        ];
        let found = discover(&config, &catalog, &paths, None);
        let listed: Vec<(String, String)> =
            found.modules.iter().map(|m| (m.name.clone(), m.source.to_string())).collect();
        // alias.so and libvendor.so are one library: the config entry wins.
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert_eq!(listed[0], ("alias".to_string(), "config".to_string()));
        assert_eq!(listed[1].0, "other");
        assert!(listed[1].1.contains("mine.module"), "{listed:?}");
        assert_eq!(listed[2], ("cat".to_string(), "catalog gm3000".to_string()));
        let notes: Vec<&str> = found.notes.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("libmissing.so") && n.contains("not installed")));
        assert!(notes.iter().any(|n| n.contains("no `module:`")));
    }

    #[test]
    fn environment_list_replaces_everything_but_keeps_options() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = SearchPaths { p11kit_config_dirs: vec![tmp.path().to_path_buf()], module_dirs: vec![] };
        write(tmp.path(), "x.module", "module: /usr/lib/whatever.so\n");
        let mut configured = ModuleConfig::new(PathBuf::from("/a/libone.so"));
        configured.keep_login = true;
        let config = Pkcs11Config { modules: vec![configured], ..Default::default() };
        let found = discover(&config, &[], &paths, Some("/a/libone.so:/b/libtwo.so:"));
        assert_eq!(found.modules.len(), 2);
        assert!(found.modules.iter().all(|m| m.source == ModuleSource::Environment));
        assert!(found.modules[0].options.keep_login);
        assert!(!found.modules[1].options.keep_login);
        assert_eq!(found.modules[1].name, "two");
    }

    #[test]
    fn p11kit_can_be_turned_off() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "x.module", "module: /bin/sh\n");
        let paths = SearchPaths { p11kit_config_dirs: vec![tmp.path().to_path_buf()], module_dirs: vec![] };
        let on = discover(&Pkcs11Config::default(), &[], &paths, None);
        assert_eq!(on.modules.len(), 1);
        let off = discover(&Pkcs11Config::only(Vec::<PathBuf>::new()), &[], &paths, None);
        assert!(off.modules.is_empty());
    }

    #[test]
    fn opensc_registration_is_skipped_beside_the_native_pcsc_driver_unless_configured() {
        let tmp = tempfile::tempdir().unwrap();
        let libs = tmp.path().join("lib");
        write(&libs, "opensc-pkcs11.so", "");
        write(&libs, "libvendor.so", "");
        let reg = tmp.path().join("p11kit");
        write(&reg, "opensc-pkcs11.module", "module: opensc-pkcs11.so\n");
        write(&reg, "vendor.module", "module: libvendor.so\n");
        let paths = SearchPaths { p11kit_config_dirs: vec![reg], module_dirs: vec![libs.clone()] };
        let pcsc = DiscoveryOptions { native_pcsc: true };
        let names = |d: &Discovery| d.modules.iter().map(|m| m.name.clone()).collect::<Vec<_>>();

        let beside = discover_with(&Pkcs11Config::default(), &[], &paths, None, pcsc);
        assert_eq!(names(&beside), vec!["vendor"]);
        assert_eq!(beside.skipped.len(), 1);
        assert_eq!(beside.skipped[0].0.name, "opensc-pkcs11");
        assert!(beside.skipped[0].1.contains("appear twice"), "{}", beside.skipped[0].1);

        let alone = discover_with(&Pkcs11Config::default(), &[], &paths, None, DiscoveryOptions::default());
        assert_eq!(names(&alone), vec!["opensc-pkcs11", "vendor"]);
        assert!(alone.skipped.is_empty());

        let config =
            Pkcs11Config { modules: vec![ModuleConfig::new(libs.join("opensc-pkcs11.so"))], ..Default::default() };
        let named = discover_with(&config, &[], &paths, None, pcsc);
        assert_eq!(names(&named), vec!["opensc-pkcs11", "vendor"]);
        assert_eq!(named.modules[0].source, ModuleSource::Config);
        assert!(named.skipped.is_empty());
    }

    #[test]
    fn names_are_short() {
        assert_eq!(module_name(Path::new("/usr/lib/softhsm/libsofthsm2.so")), "softhsm2");
        assert_eq!(module_name(Path::new("opensc-pkcs11.so")), "opensc-pkcs11");
        assert_eq!(module_name(Path::new("/x/libfoo.so.1.2")), "foo");
    }
}
