//! The paired-origin store: which web origins the holder allowed, with which grants.
//!
//! A JSON file (`$XDG_DATA_HOME/ukey/origins.json`, mode 0600) written atomically under an
//! `flock`, so the agent and `ukey origins revoke` (when no agent runs) never lose each other's
//! changes. The agent re-reads the file when it changes on disk, so a revocation takes effect on
//! the next request. A damaged file is never overwritten: pairing is refused until it is fixed,
//! and no origin counts as paired meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use ukey_api::Error;

/// What a paired origin may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// List carriers and certificates, sign, authenticate, subscribe to events.
    Sign,
    /// Generate keys, create CSRs, import certificates (enrolment).
    Enroll,
}

impl Grant {
    /// The name used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Sign => "sign",
            Grant::Enroll => "enroll",
        }
    }
}

/// One paired origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedOrigin {
    /// Canonical origin (`https://bank.example`).
    pub origin: String,
    /// What it may do.
    pub grants: BTreeSet<Grant>,
    /// When the holder confirmed it, seconds since the Unix epoch.
    pub paired_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    origins: Vec<PairedOrigin>,
}

/// File identity, to notice changes made by another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime_ns: i128,
    len: u64,
    ino: u64,
}

#[derive(Debug, Default)]
struct Cached {
    entries: BTreeMap<String, PairedOrigin>,
    stamp: Option<Stamp>,
    corrupt: Option<String>,
}

/// The store; cheap to query on every request.
#[derive(Debug)]
pub struct OriginStore {
    path: PathBuf,
    cached: Mutex<Cached>,
}

impl OriginStore {
    /// Opens the store at `path` (created on first pairing).
    pub fn open(path: PathBuf) -> Self {
        let store = OriginStore { path, cached: Mutex::new(Cached::default()) };
        if let Ok(mut c) = store.cached.lock() {
            store.refresh(&mut c);
            if let Some(problem) = &c.corrupt {
                log::error!("{problem}");
            }
        }
        store
    }

    /// The default location: `$XDG_DATA_HOME/ukey/origins.json`, or `data_dir` when configured.
    pub fn default_path(data_dir: Option<&Path>) -> Result<PathBuf, Error> {
        if let Some(d) = data_dir {
            return Ok(d.join("origins.json"));
        }
        let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                Some(h) => PathBuf::from(h).join(".local/share"),
                None => return Err(Error::NotFound("neither XDG_DATA_HOME nor HOME is set".into())),
            },
        };
        Ok(base.join("ukey").join("origins.json"))
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The grants of an origin (empty when not paired).
    pub fn grants(&self, origin: &str) -> BTreeSet<Grant> {
        let Ok(mut c) = self.cached.lock() else { return BTreeSet::new() };
        self.refresh(&mut c);
        c.entries.get(origin).map(|p| p.grants.clone()).unwrap_or_default()
    }

    /// Every paired origin.
    pub fn list(&self) -> Result<Vec<PairedOrigin>, Error> {
        let mut c = self.lock()?;
        self.refresh(&mut c);
        if let Some(problem) = &c.corrupt {
            return Err(Error::Corrupt { path: self.path.clone(), reason: problem.clone() });
        }
        Ok(c.entries.values().cloned().collect())
    }

    /// Adds grants to an origin (pairing it if new) and saves.
    pub fn pair(&self, origin: &str, grants: &BTreeSet<Grant>) -> Result<PairedOrigin, Error> {
        self.update(|entries| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let entry = entries.entry(origin.to_string()).or_insert_with(|| PairedOrigin {
                origin: origin.to_string(),
                grants: BTreeSet::new(),
                paired_at: now,
            });
            entry.grants.extend(grants.iter().copied());
            entry.clone()
        })
    }

    /// Removes an origin; true if it was paired.
    pub fn revoke(&self, origin: &str) -> Result<bool, Error> {
        self.update(|entries| entries.remove(origin).is_some())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Cached>, Error> {
        self.cached.lock().map_err(|_| Error::Device("the origin store lock is poisoned".into()))
    }

    /// Read-modify-write under the in-process mutex and the cross-process file lock.
    fn update<T>(&self, change: impl FnOnce(&mut BTreeMap<String, PairedOrigin>) -> T) -> Result<T, Error> {
        let mut c = self.lock()?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::agent::instance::ensure_private_dir(dir)?;
        let _file_lock = lock_file(&dir.join("origins.lock"))?;
        c.stamp = None;
        self.refresh(&mut c);
        if let Some(problem) = &c.corrupt {
            return Err(Error::Corrupt { path: self.path.clone(), reason: problem.clone() });
        }
        let out = change(&mut c.entries);
        let file = StoreFile { version: 1, origins: c.entries.values().cloned().collect() };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| Error::Device(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        f.write_all(&text)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        fs::rename(&tmp, &self.path).map_err(|e| Error::io(format!("saving {}", self.path.display()), e))?;
        c.stamp = stamp(&self.path);
        Ok(out)
    }

    /// Re-reads the file if it changed since the last read.
    fn refresh(&self, c: &mut Cached) {
        let now = stamp(&self.path);
        if now.is_some() && now == c.stamp {
            return;
        }
        c.stamp = now;
        c.entries.clear();
        c.corrupt = None;
        if now.is_none() {
            return;
        }
        match fs::read(&self.path) {
            Ok(bytes) => match serde_json::from_slice::<StoreFile>(&bytes) {
                Ok(file) if file.version == 1 => {
                    c.entries = file.origins.into_iter().map(|p| (p.origin.clone(), p)).collect();
                }
                Ok(file) => {
                    c.corrupt = Some(format!(
                        "{} has version {}, which this ukey does not know; it was left untouched",
                        self.path.display(),
                        file.version
                    ))
                }
                Err(e) => {
                    c.corrupt = Some(format!(
                        "{} is damaged ({e}); no origin counts as paired until it is fixed or removed",
                        self.path.display()
                    ))
                }
            },
            Err(e) => c.corrupt = Some(format!("cannot read {}: {e}", self.path.display())),
        }
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    Some(Stamp {
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        len: m.len(),
        ino: m.ino(),
    })
}

fn lock_file(path: &Path) -> Result<File, Error> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    rustix::fs::flock(&f, FlockOperation::LockExclusive)
        .map_err(|e| Error::io(format!("locking {}", path.display()), e.into()))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign() -> BTreeSet<Grant> {
        [Grant::Sign].into_iter().collect()
    }

    #[test]
    fn pair_list_revoke_and_see_other_writers() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ukey/origins.json");
        let a = OriginStore::open(path.clone());
        assert!(a.grants("https://bank.example").is_empty());
        a.pair("https://bank.example", &sign()).unwrap();
        let b = OriginStore::open(path.clone());
        assert_eq!(b.grants("https://bank.example"), sign());
        assert!(b.revoke("https://bank.example").unwrap());
        assert!(a.grants("https://bank.example").is_empty(), "revocation by another process is seen");
        assert!(!a.revoke("https://bank.example").unwrap());
    }

    #[test]
    fn a_damaged_file_is_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("origins.json");
        fs::write(&path, b"{ damaged").unwrap();
        let s = OriginStore::open(path.clone());
        assert!(s.grants("https://bank.example").is_empty());
        assert!(matches!(s.pair("https://x.example", &sign()), Err(Error::Corrupt { .. })));
        assert!(matches!(s.list(), Err(Error::Corrupt { .. })));
        assert_eq!(fs::read(&path).unwrap(), b"{ damaged");
    }
}
