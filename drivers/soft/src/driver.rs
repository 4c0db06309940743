//! The soft-token [`Driver`]: a directory store holding any number of soft tokens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ukey_api::{Carrier, CarrierKind, Credential, Driver, DriverStatus, Error, EventSink, Pin, PinRole, Result, Watch};

use crate::carrier::SoftToken;
use crate::config::StoreConfig;
use crate::create::fresh_state;
use crate::fsio::create_private_dir;
use crate::kdf::KdfParams;
use crate::naming::check_token_label;
use crate::pins::check_pin_length;
use crate::random::random_serial;
use crate::store::Store;
use crate::watch::StoreWatch;

/// Environment variable naming the store directory; the CLI's `--soft-dir` sets it.
pub const ENV_SOFT_DIR: &str = "UKEY_SOFT_DIR";

/// The built-in software token driver.
#[derive(Debug, Clone)]
pub struct SoftDriver {
    store: Store,
    config: StoreConfig,
}

impl SoftDriver {
    /// A driver over the store in `dir`. Nothing is created until a token is.
    pub fn open(dir: impl Into<PathBuf>) -> SoftDriver {
        SoftDriver { store: Store::new(dir.into()), config: StoreConfig::default() }
    }

    /// A driver over `$UKEY_SOFT_DIR`, or the default store (see [`SoftDriver::default_dir`]).
    pub fn from_env() -> Result<SoftDriver> {
        match std::env::var_os(ENV_SOFT_DIR) {
            Some(dir) if !dir.is_empty() => Ok(SoftDriver::open(dir)),
            _ => Ok(SoftDriver::open(SoftDriver::default_dir()?)),
        }
    }

    /// `$XDG_DATA_HOME/ukey/tokens`, falling back to `~/.local/share/ukey/tokens`.
    pub fn default_dir() -> Result<PathBuf> {
        let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").and_then(absolute) {
            return Ok(data.join("ukey").join("tokens"));
        }
        if let Some(home) = std::env::var_os("HOME").and_then(absolute) {
            return Ok(home.join(".local").join("share").join("ukey").join("tokens"));
        }
        Err(Error::InvalidInput(format!(
            "cannot find a place for soft tokens: set {ENV_SOFT_DIR} (or --soft-dir), XDG_DATA_HOME or HOME"
        )))
    }

    /// Uses these Argon2id parameters for PIN records written from now on. Lower than the
    /// default only for tests: the cost of guessing a PIN offline falls with them.
    pub fn with_kdf_params(mut self, kdf: KdfParams) -> Result<SoftDriver> {
        kdf.check().map_err(Error::InvalidInput)?;
        self.config.kdf = kdf;
        Ok(self)
    }

    /// Number of wrong tries before a PIN of a token created from now on locks (1–100).
    pub fn with_max_tries(mut self, tries: u32) -> Result<SoftDriver> {
        if !(1..=crate::format::MAX_TRIES_LIMIT).contains(&tries) {
            return Err(Error::InvalidInput(format!(
                "PIN tries must be between 1 and {}",
                crate::format::MAX_TRIES_LIMIT
            )));
        }
        self.config.max_tries = tries;
        Ok(self)
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Creates a soft token with a random serial and the given label and PINs. Labels are unique
    /// within a store, so people can name a token by label.
    pub fn create_token(&self, label: &str, so_pin: &Pin, user_pin: &Pin) -> Result<Arc<dyn Carrier>> {
        Ok(Arc::new(self.create_soft_token(label, so_pin, user_pin)?))
    }

    /// [`SoftDriver::create_token`], returning the concrete type (for its path and lock file).
    pub fn create_soft_token(&self, label: &str, so_pin: &Pin, user_pin: &Pin) -> Result<SoftToken> {
        check_token_label(label)?;
        check_pin_length(so_pin, PinRole::So)?;
        check_pin_length(user_pin, PinRole::User)?;
        create_private_dir(self.store.dir())?;
        let _store_lock = self.store.lock()?;
        self.store.check_label_free(label, None)?;
        let serial = random_serial()?;
        let files = self.store.files(&serial);
        if files.path.exists() {
            return Err(Error::Crypto(format!("a fresh random serial {serial} is already taken; try again")));
        }
        let state = fresh_state(label, &serial, so_pin, user_pin, &self.config)?;
        let token_lock = crate::lock::FileLock::exclusive(&files.lock)?;
        files.write_new(&state)?;
        log::info!("created soft token `{label}` (serial {serial}) in {}", self.store.dir().display());
        drop(token_lock);
        self.open_soft_token(&serial)
    }

    /// Opens one token by serial or label.
    pub fn token(&self, serial_or_label: &str) -> Result<Arc<dyn Carrier>> {
        Ok(Arc::new(self.soft_token(serial_or_label)?))
    }

    /// [`SoftDriver::token`], returning the concrete type.
    pub fn soft_token(&self, serial_or_label: &str) -> Result<SoftToken> {
        let serials = self.store.serials()?;
        if serials.iter().any(|s| s.eq_ignore_ascii_case(serial_or_label)) {
            return self.open_soft_token(&serial_or_label.to_ascii_uppercase());
        }
        for serial in &serials {
            if let Ok(token) = self.open_soft_token(serial) {
                if token.info().label == serial_or_label {
                    return Ok(token);
                }
            }
        }
        Err(Error::NotFound(format!(
            "no soft token with serial or label `{serial_or_label}` in {}; `ukey tokens` lists them",
            self.store.dir().display()
        )))
    }

    /// Deletes a token and everything on it, authorised by its SO PIN (not needed once the SO
    /// PIN is locked).
    pub fn delete_token(&self, serial_or_label: &str, so: &Credential) -> Result<()> {
        self.soft_token(serial_or_label)?.delete(so)
    }

    fn open_soft_token(&self, serial: &str) -> Result<SoftToken> {
        SoftToken::open(self.store.clone(), serial, self.config)
    }
}

impl Driver for SoftDriver {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Soft
    }

    fn carriers(&self) -> Result<Vec<Arc<dyn Carrier>>> {
        let mut carriers: Vec<Arc<dyn Carrier>> = Vec::new();
        for serial in self.store.serials()? {
            match self.open_soft_token(&serial) {
                Ok(token) => carriers.push(Arc::new(token)),
                Err(e) => log::warn!("soft token {serial} left out: {e}"),
            }
        }
        Ok(carriers)
    }

    fn watch(&self, sink: EventSink) -> Result<Box<dyn Watch>> {
        Ok(Box::new(StoreWatch::start(self.store.clone(), sink)?))
    }

    fn status(&self) -> Vec<DriverStatus> {
        let subject = self.store.dir().display().to_string();
        let serials = match self.store.serials() {
            Ok(s) => s,
            Err(e) => return vec![DriverStatus { subject, ok: false, message: e.to_string() }],
        };
        let mut statuses = Vec::new();
        let mut readable = 0;
        for serial in &serials {
            let files = self.store.files(serial);
            match files.read(|_| Ok(())) {
                Ok(()) => readable += 1,
                Err(e) => statuses.push(DriverStatus {
                    subject: files.path.display().to_string(),
                    ok: false,
                    message: e.to_string(),
                }),
            }
        }
        let message = if self.store.dir().exists() {
            format!("{readable} soft token(s) readable")
        } else {
            "no soft tokens yet; `ukey token init --soft --label NAME` creates one".to_string()
        };
        statuses.insert(0, DriverStatus { subject, ok: true, message });
        statuses
    }
}
