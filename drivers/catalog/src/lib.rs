//! The ukey carrier catalog: which USB keys and smart cards ukey knows, how to recognise them
//! (USB ids, ATR patterns, PKCS#11 module names, reader names), how to reach them, how they sign
//! with SM2, their PIN rules and certifications, and whether each is a compliant carrier.
//!
//! The seed catalog is built into the crate (`data/*.toml`); units add or override entries in
//! `/etc/ukey/catalog.d`, holders in `~/.config/ukey/catalog.d` (see [`CatalogDirs`]). Loading
//! never fails as a whole: a broken file or entry is reported as a [`CatalogProblem`] with its
//! file and line, and the rest loads. [`udev::render`] turns the catalog into udev rules.
//!
//! The catalog is a leaf crate: drivers and the CLI use it, it uses no driver.

mod atr;
mod catalog;
mod dirs;
mod entry;
mod load;
mod parse;
mod problem;
mod raw;
mod seed;
pub mod udev;
mod validate;

pub use atr::{AtrPattern, AtrPatternError, MAX_ATR_LEN};
pub use catalog::Catalog;
pub use dirs::{CATALOG_DIR_NAME, CatalogDirs, DEFAULT_SYSTEM_DIR};
pub use entry::{
    Application, Certification, Compliance, Entry, HidFraming, Interface, Layer, Modules, Origin, PinPolicy,
    Sm2Conventions, Sm2Input, UsbId,
};
pub use load::{MAX_FILE_SIZE, load, load_from_env, load_seed, load_text};
pub use problem::{CatalogProblem, ProblemKind, Severity};
pub use seed::seed_file_names;
