//! Locked read-modify-write of one token file, and PIN checks that never give free tries.
//!
//! Every operation re-reads the token from disk under its lock, so processes sharing a store see
//! each other's changes. A PIN check first spends the try *on disk* (counter decremented, file
//! fsynced and renamed into place) and only then runs the KDF: killing the process in the middle
//! leaves the try spent. A right PIN restores the counter in the same write that stores the
//! operation's result.

use std::path::{Path, PathBuf};

use ukey_api::{Credential, Error, Pin, PinRole, Result};

use crate::format::{self, MAX_FILE_LEN, PinRecord, TokenState};
use crate::fsio::{read_bounded, write_atomic};
use crate::lock::FileLock;
use crate::pins::{Attempt, MasterKey, attempt, check_pin_length};

/// File name suffix of token files in the store directory.
pub const TOKEN_SUFFIX: &str = "token";

/// File name suffix of per-token lock files.
pub const LOCK_SUFFIX: &str = "lock";

/// The files of one token in the store.
#[derive(Debug, Clone)]
pub struct TokenFiles {
    /// `<dir>/<serial>.token`
    pub path: PathBuf,
    /// `<dir>/<serial>.lock`
    pub lock: PathBuf,
}

impl TokenFiles {
    /// The files of the token with `serial` in `dir`.
    pub fn new(dir: &Path, serial: &str) -> Self {
        TokenFiles {
            path: dir.join(format!("{serial}.{TOKEN_SUFFIX}")),
            lock: dir.join(format!("{serial}.{LOCK_SUFFIX}")),
        }
    }

    /// Reads and checks the file, without taking the lock (writes are atomic renames, so an
    /// unlocked read sees a whole version). A missing file means the token was deleted.
    pub fn load_unlocked(&self) -> Result<TokenState> {
        let bytes = read_bounded(&self.path, MAX_FILE_LEN)?.ok_or(Error::TokenRemoved)?;
        let state = format::decode(&self.path, &bytes)?;
        let expected = self.path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if state.serial != expected {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                reason: format!("it holds the token with serial {} but is named after {expected}", state.serial),
            });
        }
        Ok(state)
    }

    /// Runs `f` on the current state, read afresh from disk.
    ///
    /// Read-only operations take no lock: every write replaces the file by an atomic rename, so a
    /// reader always sees one whole version, and listing tokens or PIN state never waits behind
    /// another process's PIN check (which holds the lock for a whole KDF run).
    pub fn read<T>(&self, f: impl FnOnce(&TokenState) -> Result<T>) -> Result<T> {
        let state = self.load_unlocked()?;
        f(&state)
    }

    /// Runs `f` on the current state under the exclusive lock, then writes the result.
    ///
    /// When `f` fails, only the PIN counters it changed are written back (a spent try stays
    /// spent, a right PIN restores its counter); nothing else it changed is kept.
    pub fn update<T>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<T>) -> Result<T> {
        let _lock = FileLock::exclusive(&self.lock)?;
        let state = self.load_unlocked()?;
        let mut txn = Txn { files: self, committed: state.clone(), state, deleted: false };
        match f(&mut txn) {
            Ok(value) => {
                txn.commit()?;
                Ok(value)
            }
            Err(err) => {
                let mut counters_only = txn.committed.clone();
                counters_only.user_pin.tries_left = txn.state.user_pin.tries_left;
                counters_only.so_pin.tries_left = txn.state.so_pin.tries_left;
                txn.state = counters_only;
                if let Err(write_err) = txn.commit() {
                    log::warn!("could not store PIN counters of {}: {write_err}", self.path.display());
                }
                Err(err)
            }
        }
    }

    /// Writes a state under the exclusive lock the caller holds (token creation).
    pub fn write_new(&self, state: &TokenState) -> Result<()> {
        write_atomic(&self.path, &format::encode(state)?)
    }
}

/// One locked read-modify-write.
pub struct Txn<'a> {
    files: &'a TokenFiles,
    committed: TokenState,
    /// The working state; changes are written when the operation succeeds.
    pub state: TokenState,
    deleted: bool,
}

impl Txn<'_> {
    /// The token file, for messages.
    pub fn path(&self) -> &Path {
        &self.files.path
    }

    /// Removes the token file durably; nothing is written afterwards.
    pub fn delete_file(&mut self) -> Result<()> {
        crate::fsio::remove_durably(&self.files.path)?;
        self.deleted = true;
        Ok(())
    }

    /// Writes the working state if it changed.
    pub fn commit(&mut self) -> Result<()> {
        if !self.deleted && self.state != self.committed {
            write_atomic(&self.files.path, &format::encode(&self.state)?)?;
            self.committed = self.state.clone();
        }
        Ok(())
    }

    /// Checks a PIN and returns the master key. The try is spent on disk before the check; a
    /// right PIN restores the counter (written with the operation's result).
    ///
    /// `for_change` lets a PIN that must be changed through, for the change itself.
    pub fn unlock(&mut self, role: PinRole, auth: &Credential, for_change: bool) -> Result<MasterKey> {
        let pin = pin_of(auth)?;
        check_pin_length(pin, role)?;
        let serial = self.state.serial.clone();
        let record = pin_record(&mut self.state, role);
        if record.locked() {
            return Err(Error::PinLocked { role });
        }
        record.tries_left -= 1;
        self.commit()?;
        let record = pin_record(&mut self.state, role);
        match attempt(record, pin, role, &serial)? {
            Attempt::Right(master) => {
                record.tries_left = record.max_tries;
                if record.must_change && !for_change {
                    return Err(Error::PinMustChange { role });
                }
                Ok(master)
            }
            Attempt::Wrong => {
                log::info!("wrong {role} on soft token {serial}; {} tries left", record.tries_left);
                Err(Error::WrongPin { role, retries_left: Some(record.tries_left), detail: None })
            }
            Attempt::Damaged(reason) => Err(Error::Corrupt { path: self.files.path.clone(), reason }),
        }
    }
}

/// The PIN inside a credential; the soft token has no PIN pad.
pub fn pin_of(auth: &Credential) -> Result<&Pin> {
    match auth {
        Credential::Pin(pin) => Ok(pin),
        Credential::ProtectedPath => {
            Err(Error::NotSupported("the software token has no PIN pad; supply the PIN itself".into()))
        }
    }
}

/// The record of one role.
pub fn pin_record(state: &mut TokenState, role: PinRole) -> &mut PinRecord {
    match role {
        PinRole::User => &mut state.user_pin,
        PinRole::So => &mut state.so_pin,
    }
}
