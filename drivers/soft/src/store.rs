//! The store directory: which tokens it holds, and the store-wide lock that keeps labels unique.

use std::fs;
use std::path::{Path, PathBuf};

use ukey_api::{Error, Result};

use crate::fsio::io_error;
use crate::lock::FileLock;
use crate::txn::{TOKEN_SUFFIX, TokenFiles};

/// Name of the store-wide lock file, held while a token is created, renamed or deleted.
const STORE_LOCK: &str = ".store.lock";

/// One token directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir` (not touched until used).
    pub fn new(dir: PathBuf) -> Self {
        Store { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Serials of the token files present, sorted. A missing directory holds no tokens.
    pub fn serials(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.dir, "list", e)),
        };
        let mut serials = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, "list", e))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(TOKEN_SUFFIX) {
                continue;
            }
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                if !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric()) {
                    serials.push(stem.to_string());
                }
            }
        }
        serials.sort();
        Ok(serials)
    }

    /// The files of one token.
    pub fn files(&self, serial: &str) -> TokenFiles {
        TokenFiles::new(&self.dir, serial)
    }

    /// Takes the store-wide lock (the directory must exist).
    pub fn lock(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.dir.join(STORE_LOCK))
    }

    /// Refuses `label` if another readable token (other than `except_serial`) already uses it,
    /// so people can name tokens by label. Call with the store lock held.
    pub fn check_label_free(&self, label: &str, except_serial: Option<&str>) -> Result<()> {
        for serial in self.serials()? {
            if Some(serial.as_str()) == except_serial {
                continue;
            }
            if let Ok(state) = self.files(&serial).load_unlocked() {
                if state.label == label {
                    return Err(Error::InvalidInput(format!(
                        "a soft token labelled `{label}` already exists (serial {serial}); choose another label or delete that token"
                    )));
                }
            }
        }
        Ok(())
    }
}
