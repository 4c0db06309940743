//! Where ukey keeps its files and what the optional TOML config file says.
//!
//! Every path has three layers, strongest first: a command-line flag (or its environment
//! variable, which clap reads for the flag), the config file, and the XDG base-directory default.
//! Tests and scripts point everything at temporary directories this way, without touching the
//! user's real tokens.
//!
//! The config file is TOML. Each part of ukey owns one table; a later part adds its table as a
//! field of [`ConfigFile`] (PKCS#11 modules, the agent's port, ...). Keys nobody knows are
//! reported as warnings, so a typo does not silently do nothing and an older ukey still reads a
//! newer file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Name of ukey's directory under each XDG base directory.
const APP_DIR: &str = "ukey";

/// A problem with the config file or the paths derived from it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read the config file {}: {source}; fix the path given by --config / UKEY_CONFIG", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has a value of the wrong type.
    #[error("the config file {} is not valid: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// No home directory to derive default paths from.
    #[error("cannot find a place for {what}: neither {xdg} nor HOME is set; set {xdg} or HOME, or pass {flag}")]
    NoHome {
        /// What needed a path.
        what: &'static str,
        /// The XDG variable that would name it.
        xdg: &'static str,
        /// The flag that overrides it.
        flag: &'static str,
    },
}

/// Paths given on the command line (or through their environment variables).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config` / `UKEY_CONFIG`: the TOML config file to read. When set it must exist.
    pub config: Option<PathBuf>,
    /// `--soft-dir` / `UKEY_SOFT_DIR`: the directory that holds the soft tokens.
    pub soft_dir: Option<PathBuf>,
    /// `--drivers` / `UKEY_DRIVERS`: start only these drivers (`soft`, `pcsc`, ...).
    pub drivers: Option<Vec<String>>,
}

/// The `[soft]` table: the built-in software token store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftSection {
    /// Directory holding the soft tokens; relative paths are taken from the config file's
    /// directory, `~/` from HOME.
    pub dir: Option<PathBuf>,
    /// Set to false to hide soft tokens (for machines that must only use hardware carriers).
    pub enabled: Option<bool>,
}

/// The config file as written. Later parts of ukey add their own table here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    /// `drivers = ["soft", "pcsc"]`: start only these drivers (default: all of them).
    pub drivers: Option<Vec<String>>,
    /// `[soft]`
    pub soft: SoftSection,
    /// `[pkcs11]`: modules to load, p11-kit discovery, per-module options (SM2 numbers).
    pub pkcs11: ukey_pkcs11::Pkcs11Config,
    /// `[agent]`: port, development origins, pinentry, PIN cache, limits.
    pub agent: crate::agent::settings::AgentSettings,
    /// Tables and keys this version of ukey does not know; reported as warnings.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, toml::Value>,
}

impl ConfigFile {
    /// Parses TOML text; `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.to_path_buf(), message: e.to_string() })
    }
}

/// Everything ukey needs to know about where things are, after all layers are applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// The parsed config file (defaults when there is none).
    pub file: ConfigFile,
    /// Directory holding the soft tokens.
    pub soft_dir: PathBuf,
    /// Whether the soft-token driver is started.
    pub soft_enabled: bool,
    /// Only these drivers are started; `None` starts every driver.
    pub drivers: Option<Vec<String>>,
    /// Things worth telling the user (unknown config keys), printed as warnings.
    pub warnings: Vec<String>,
}

impl Config {
    /// Applies the layers: flags and environment, then the config file, then XDG defaults.
    ///
    /// A config file named by `--config` must exist; the default one
    /// (`$XDG_CONFIG_HOME/ukey/config.toml`) is optional.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let (config_file, file) = match &overrides.config {
            Some(path) => (Some(path.clone()), read_config(path)?),
            None => match default_config_path() {
                Some(path) if path.is_file() => (Some(path.clone()), read_config(&path)?),
                _ => (None, ConfigFile::default()),
            },
        };
        let base = config_file.as_deref().and_then(Path::parent).map(Path::to_path_buf);
        let soft_dir = match (&overrides.soft_dir, &file.soft.dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => expand(dir, base.as_deref()),
            (None, None) => data_home()
                .ok_or(ConfigError::NoHome { what: "the soft tokens", xdg: "XDG_DATA_HOME", flag: "--soft-dir" })?
                .join(APP_DIR)
                .join("tokens"),
        };
        let warnings = file
            .unknown
            .keys()
            .map(|k| {
                format!(
                    "the config file {} has an unknown entry `{k}`; it is ignored",
                    config_file.as_deref().unwrap_or(Path::new("?")).display()
                )
            })
            .collect();
        let drivers = overrides.drivers.clone().or_else(|| file.drivers.clone());
        Ok(Config { soft_enabled: file.soft.enabled.unwrap_or(true), drivers, config_file, file, soft_dir, warnings })
    }
}

fn read_config(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    ConfigFile::parse(&text, path)
}

/// `~/x` → `$HOME/x`; a relative path → relative to `base` (the config file's directory).
fn expand(path: &Path, base: Option<&Path>) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = home_dir()
    {
        return home.join(rest);
    }
    match base {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    }
}

fn home_dir() -> Option<PathBuf> {
    absolute_env("HOME")
}

/// An environment variable holding an absolute path; XDG says relative values are ignored.
fn absolute_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).map(PathBuf::from).filter(|p| p.is_absolute())
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
pub fn data_home() -> Option<PathBuf> {
    absolute_env("XDG_DATA_HOME").or_else(|| home_dir().map(|h| h.join(".local/share")))
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_home() -> Option<PathBuf> {
    absolute_env("XDG_CONFIG_HOME").or_else(|| home_dir().map(|h| h.join(".config")))
}

/// `$XDG_STATE_HOME`, else `~/.local/state` (logs, history).
pub fn state_home() -> Option<PathBuf> {
    absolute_env("XDG_STATE_HOME").or_else(|| home_dir().map(|h| h.join(".local/state")))
}

/// `$XDG_RUNTIME_DIR` (sockets); there is no fallback, a caller must say what to do without it.
pub fn runtime_dir() -> Option<PathBuf> {
    absolute_env("XDG_RUNTIME_DIR")
}

/// The default config file: `$XDG_CONFIG_HOME/ukey/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    config_home().map(|c| c.join(APP_DIR).join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[soft]\ndir = \"tokens\"\n").unwrap();
        let from_file = Config::load(&Overrides { config: Some(file.clone()), soft_dir: None, drivers: None }).unwrap();
        assert_eq!(from_file.soft_dir, dir.path().join("tokens"));
        let flag = Config::load(&Overrides { config: Some(file), soft_dir: Some("/x".into()), drivers: None }).unwrap();
        assert_eq!(flag.soft_dir, PathBuf::from("/x"));
    }

    #[test]
    fn unknown_keys_warn_and_bad_values_fail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[future]\nx = 1\n").unwrap();
        let cfg = Config::load(&Overrides { config: Some(file.clone()), soft_dir: Some("/s".into()), drivers: None })
            .unwrap();
        assert_eq!(cfg.warnings.len(), 1);
        assert!(cfg.warnings[0].contains("future"));
        std::fs::write(&file, "[soft]\ndir = 5\n").unwrap();
        let err = Config::load(&Overrides { config: Some(file.clone()), soft_dir: None, drivers: None }).unwrap_err();
        assert!(err.to_string().contains("c.toml"), "{err}");
        std::fs::write(&file, "[soft]\ndri = \"x\"\n").unwrap();
        assert!(Config::load(&Overrides { config: Some(file), soft_dir: None, drivers: None }).is_err());
    }

    #[test]
    fn missing_named_config_is_an_error() {
        let err =
            Config::load(&Overrides { config: Some("/nonexistent/ukey.toml".into()), soft_dir: None, drivers: None })
                .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ukey.toml"));
    }
}
