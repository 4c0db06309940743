//! Where the system and user catalog directories are. Every path can be overridden, so tests and
//! units with unusual layouts never touch the real `/etc` or home directory.

use std::env;
use std::path::PathBuf;

/// Name of the catalog directory inside ukey's system and config directories.
pub const CATALOG_DIR_NAME: &str = "catalog.d";

/// The system directory when `UKEY_SYSTEM_DIR` is not set.
pub const DEFAULT_SYSTEM_DIR: &str = "/etc/ukey";

/// The two directories of catalog files beyond the seed. `None` skips a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogDirs {
    /// The unit's entries, normally `/etc/ukey/catalog.d`.
    pub system: Option<PathBuf>,
    /// The holder's entries, normally `~/.config/ukey/catalog.d`.
    pub user: Option<PathBuf>,
}

impl CatalogDirs {
    /// Explicit directories (tests, `--system-dir`-style options).
    pub fn new(system: Option<PathBuf>, user: Option<PathBuf>) -> Self {
        CatalogDirs { system, user }
    }

    /// No directories: the seed catalog only.
    pub fn seed_only() -> Self {
        CatalogDirs::default()
    }

    /// The directories from the environment:
    /// system `$UKEY_SYSTEM_DIR/catalog.d` (default `/etc/ukey/catalog.d`);
    /// user `$UKEY_CONFIG_DIR/catalog.d`, else `$XDG_CONFIG_HOME/ukey/catalog.d`, else
    /// `$HOME/.config/ukey/catalog.d` (none when neither is set).
    pub fn from_env() -> Self {
        Self::from_vars(|name| env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from))
    }

    /// [`CatalogDirs::from_env`] with the variables looked up by `var` (testable without
    /// touching the process environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<PathBuf>) -> Self {
        let system = var("UKEY_SYSTEM_DIR").unwrap_or_else(|| PathBuf::from(DEFAULT_SYSTEM_DIR)).join(CATALOG_DIR_NAME);
        let user = var("UKEY_CONFIG_DIR")
            .or_else(|| var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()).map(|p| p.join("ukey")))
            .or_else(|| var("HOME").map(|h| h.join(".config").join("ukey")))
            .map(|dir| dir.join(CATALOG_DIR_NAME));
        CatalogDirs { system: Some(system), user }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<PathBuf> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| PathBuf::from(v))
    }

    #[test]
    fn defaults_follow_xdg() {
        let d = CatalogDirs::from_vars(vars(&[("HOME", "/home/h")]));
        assert_eq!(d.system, Some(PathBuf::from("/etc/ukey/catalog.d")));
        assert_eq!(d.user, Some(PathBuf::from("/home/h/.config/ukey/catalog.d")));
        let d = CatalogDirs::from_vars(vars(&[("HOME", "/home/h"), ("XDG_CONFIG_HOME", "/x")]));
        assert_eq!(d.user, Some(PathBuf::from("/x/ukey/catalog.d")));
        // A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
        let d = CatalogDirs::from_vars(vars(&[("HOME", "/home/h"), ("XDG_CONFIG_HOME", "rel")]));
        assert_eq!(d.user, Some(PathBuf::from("/home/h/.config/ukey/catalog.d")));
        assert_eq!(CatalogDirs::from_vars(vars(&[])).user, None);
    }

    #[test]
    fn ukey_variables_override() {
        let d = CatalogDirs::from_vars(vars(&[
            ("HOME", "/home/h"),
            ("UKEY_SYSTEM_DIR", "/t/sys"),
            ("UKEY_CONFIG_DIR", "/t/cfg"),
        ]));
        assert_eq!(d.system, Some(PathBuf::from("/t/sys/catalog.d")));
        assert_eq!(d.user, Some(PathBuf::from("/t/cfg/catalog.d")));
    }
}
