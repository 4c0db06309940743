//! The custody registry on disk: one record per carrier, `custody/<serial>.toml`.
//!
//! Reading is open to everyone (holders can see their records). Writing needs the helpdesk role
//! ([`crate::policy::accounts::Role`]) and file-system permission on the directory (root, or a
//! group-writable directory of the helpdesk group). Every write is atomic: a temporary file in
//! the same directory, written, synced, renamed over the old one, and the directory synced — a
//! reader sees the old record or the new one, never half of each, and a crash loses neither.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::policy::record::CustodyRecord;

/// Largest record file read.
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// A registry problem, with the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system refused.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A record file is not a valid record.
    #[error("the custody record {} is not valid: {reason}; fix or remove it (`ukey helpdesk bind` rewrites it)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The registry directory.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

/// A record with the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The file.
    pub path: PathBuf,
    /// The record.
    pub record: CustodyRecord,
}

impl Registry {
    /// The registry in `dir` (usually `/etc/ukey/custody`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Registry { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a carrier's record lives in. Serials are used as file names when they are plain;
    /// anything else is replaced, with a hash of the exact serial so two serials never share a
    /// file.
    pub fn path_for(&self, serial: &str) -> PathBuf {
        let plain = !serial.is_empty()
            && serial.len() <= 64
            && serial.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !serial.starts_with('.');
        let name = if plain {
            serial.to_string()
        } else {
            let cleaned: String = serial
                .chars()
                .take(40)
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                .collect();
            let digest = crate::audit::record::body_hash(serial.as_bytes());
            format!("{cleaned}.{}", digest.get(..16).unwrap_or(&digest))
        };
        self.dir.join(format!("{name}.toml"))
    }

    /// The record of the carrier with this serial, if any.
    pub fn find(&self, serial: &str) -> Result<Option<StoredRecord>, StoreError> {
        let path = self.path_for(serial);
        match read_record(&path) {
            Ok(r) if r.carrier.serial == serial => Ok(Some(StoredRecord { path, record: r })),
            Ok(r) => Err(StoreError::Invalid {
                path,
                reason: format!("it is for serial `{}`, but its file name is for `{serial}`", r.carrier.serial),
            }),
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every record; broken files are returned separately so one bad file hides nothing else.
    pub fn all(&self) -> (Vec<StoredRecord>, Vec<StoreError>) {
        let mut records = Vec::new();
        let mut problems = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (records, problems),
            Err(e) => {
                problems.push(StoreError::Io { action: "listing", path: self.dir.clone(), source: e });
                return (records, problems);
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            match read_record(&path) {
                Ok(record) => records.push(StoredRecord { path, record }),
                Err(e) => problems.push(e),
            }
        }
        (records, problems)
    }

    /// Writes a record atomically (mode 0644, readable by holders).
    pub fn write(&self, record: &CustodyRecord) -> Result<PathBuf, StoreError> {
        record
            .validate()
            .map_err(|reason| StoreError::Invalid { path: self.path_for(&record.carrier.serial), reason })?;
        fs::create_dir_all(&self.dir).map_err(|e| StoreError::Io {
            action: "creating the registry directory",
            path: self.dir.clone(),
            source: e,
        })?;
        let path = self.path_for(&record.carrier.serial);
        let text = toml::to_string(record)
            .map_err(|e| StoreError::Invalid { path: path.clone(), reason: format!("cannot encode it ({e})") })?;
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            std::process::id()
        ));
        let io = |action: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| StoreError::Io { action, path: p, source }
        };
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io("creating", &tmp))?;
        let written = f
            .write_all(text.as_bytes())
            .and_then(|()| f.set_permissions(fs::Permissions::from_mode(0o644)))
            .and_then(|()| f.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::Io { action: "writing", path: tmp, source: e });
        }
        drop(f);
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::Io { action: "replacing", path, source: e });
        }
        fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io("syncing", &self.dir))?;
        Ok(path)
    }
}

/// Reads and parses one record file.
pub fn read_record(path: &Path) -> Result<CustodyRecord, StoreError> {
    let meta =
        fs::metadata(path).map_err(|e| StoreError::Io { action: "reading", path: path.to_path_buf(), source: e })?;
    if meta.len() > MAX_RECORD_BYTES {
        return Err(StoreError::Invalid {
            path: path.to_path_buf(),
            reason: format!("it is {} bytes, too large for a record", meta.len()),
        });
    }
    let text = fs::read_to_string(path).map_err(|e| StoreError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source: e,
    })?;
    toml::from_str(&text)
        .map_err(|e| StoreError::Invalid { path: path.to_path_buf(), reason: e.to_string().trim().to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::record::Right;

    fn record(serial: &str) -> CustodyRecord {
        let mut r = CustodyRecord { accounts: vec!["alice".into()], rights: vec![Right::Sign], ..Default::default() };
        r.carrier.serial = serial.into();
        r.holder.name = "Zhang San".into();
        r
    }

    #[test]
    fn records_are_found_by_serial_and_odd_serials_get_safe_names() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::new(dir.path().join("custody"));
        assert_eq!(reg.find("0001").unwrap(), None);
        reg.write(&record("0001")).unwrap();
        reg.write(&record("../etc/passwd x")).unwrap();
        reg.write(&record("../etc/passwd_x")).unwrap();
        assert_eq!(reg.find("0001").unwrap().unwrap().record, record("0001"));
        assert_eq!(reg.find("../etc/passwd x").unwrap().unwrap().record.carrier.serial, "../etc/passwd x");
        let (all, problems) = reg.all();
        assert_eq!((all.len(), problems.len()), (3, 0));
        for r in &all {
            assert_eq!(r.path.parent(), Some(reg.dir()));
            assert_eq!(fs::metadata(&r.path).unwrap().permissions().mode() & 0o777, 0o644);
        }
        fs::write(reg.dir().join("broken.toml"), "status = 5").unwrap();
        let (all, problems) = reg.all();
        assert_eq!((all.len(), problems.len()), (3, 1));
        assert!(reg.write(&CustodyRecord::default()).is_err(), "no serial, no record");
    }
}
