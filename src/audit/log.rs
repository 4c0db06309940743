//! Appending to the audit log: chained, durable before the caller answers, shared safely between
//! processes, rotated without breaking the chain.
//!
//! Each append takes the directory's `flock` (so the holder's agent and CLI, or several helpdesk
//! sessions, never interleave), checks whether another process moved the end of the chain since
//! it last looked, writes one line with one `write` on an `O_APPEND` file, and — for a durable
//! append — `fdatasync`s before it returns. Intent records (written before a carrier is touched)
//! are appended without their own sync: they survive the process being killed (the kernel holds
//! them), and the outcome's sync right after makes both durable.
//!
//! A writer that finds an unfinished line at the end (an earlier write was interrupted, or the
//! disk filled up mid-line) terminates it and writes a `recovery` record naming its length and
//! SM3 before continuing, so the chain stays whole and the verifier can tell an interrupted write
//! from tampering. A log whose end was cut off at a record boundary is continued from `HEAD`, so
//! the missing records show up as a gap.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{FlockOperation, flock};

use crate::audit::error::AuditError;
use crate::audit::files::{self, Head};
use crate::audit::forward::Forwarder;
use crate::audit::record::{Event, GENESIS, Record, body_hash, encode_line};
use crate::audit::tail::{Tail, read_tail};
use crate::audit::time;

/// Default size at which the active file is sealed and a new one begun.
pub const DEFAULT_ROTATE_BYTES: u64 = 64 * 1024 * 1024;

/// How a log is written.
#[derive(Debug)]
pub struct AuditOptions {
    /// Seal the active file once it is this large.
    pub rotate_bytes: u64,
    /// Mode of a directory the log creates (0700 for a holder's log, 0750 for the system's).
    pub dir_mode: u32,
    /// Mode of log files (0600 / 0640).
    pub file_mode: u32,
    /// Where records are also sent.
    pub forward: Option<Forwarder>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { rotate_bytes: DEFAULT_ROTATE_BYTES, dir_mode: 0o700, file_mode: 0o600, forward: None }
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// An audit log directory, opened on first append (so a process that never records anything
/// never creates it, and a log that was unwritable becomes usable again once it is fixed).
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    options: AuditOptions,
    writer: Mutex<Option<Writer>>,
}

impl AuditLog {
    /// A log in `dir`.
    pub fn new(dir: impl Into<PathBuf>, options: AuditOptions) -> Self {
        AuditLog { dir: dir.into(), options, writer: Mutex::new(None) }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a record; `durable` syncs it to disk before returning. On failure nothing may be
    /// assumed written, and the caller must refuse the use the record was for.
    pub fn append(&self, record: Record, durable: bool) -> Result<Appended, AuditError> {
        let mut guard = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.as_ref().is_none_or(Writer::stale) {
            *guard = Some(Writer::open(&self.dir, &self.options)?);
        }
        let Some(writer) = guard.as_mut() else {
            return Err(AuditError::Damaged { path: self.dir.clone(), reason: "the writer vanished".into() });
        };
        match writer.append(record, durable, &self.options) {
            Ok((appended, written)) => {
                if let Some(fwd) = &self.options.forward {
                    for (record, hash) in &written {
                        fwd.send(record, hash);
                    }
                }
                Ok(appended)
            }
            Err(e) => {
                // Start afresh next time: re-read the end of the chain, recover a partial line.
                *guard = None;
                Err(e)
            }
        }
    }

    /// The end of the chain now (for `ukey audit anchor`), or `None` for an empty log.
    pub fn head(&self) -> Result<Option<Appended>, AuditError> {
        let mut guard = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            *guard = Some(Writer::open(&self.dir, &self.options)?);
        }
        let Some(writer) = guard.as_mut() else { return Ok(None) };
        let _lock = DirLock::take(&writer.head, &self.dir)?;
        writer.locate(&self.options)?;
        Ok((writer.seq > 0).then(|| Appended { seq: writer.seq, hash: writer.hash.clone() }))
    }
}

/// The open state of a log.
#[derive(Debug)]
struct Writer {
    dir: PathBuf,
    head: File,
    active: Option<Active>,
    seq: u64,
    hash: String,
    fragment: Vec<u8>,
}

#[derive(Debug)]
struct Active {
    file: File,
    path: PathBuf,
    len: u64,
}

/// The directory lock (on a duplicate of the `HEAD` descriptor), released on drop.
struct DirLock(File);

impl DirLock {
    fn take(head: &File, dir: &Path) -> Result<Self, AuditError> {
        let path = dir.join(files::HEAD_FILE);
        let fd = head.try_clone().map_err(|e| AuditError::write("locking", &path, e))?;
        flock(&fd, FlockOperation::LockExclusive).map_err(|e| AuditError::write("locking", &path, e.into()))?;
        Ok(DirLock(fd))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = flock(&self.0, FlockOperation::Unlock);
    }
}

impl Writer {
    fn open(dir: &Path, options: &AuditOptions) -> Result<Self, AuditError> {
        DirBuilder::new()
            .recursive(true)
            .mode(options.dir_mode)
            .create(dir)
            .map_err(|e| AuditError::write("creating the directory", dir, e))?;
        let head = files::open_head(dir).map_err(|e| AuditError::write("opening", dir.join(files::HEAD_FILE), e))?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            head,
            active: None,
            seq: 0,
            hash: GENESIS.to_string(),
            fragment: Vec::new(),
        })
    }

    fn append(
        &mut self,
        record: Record,
        durable: bool,
        options: &AuditOptions,
    ) -> Result<(Appended, Vec<(Record, String)>), AuditError> {
        let _lock = DirLock::take(&self.head, &self.dir)?;
        self.locate(options)?;
        let mut written = Vec::new();
        if !self.fragment.is_empty() {
            let fragment = std::mem::take(&mut self.fragment);
            self.write_raw(b"\n")?;
            let recovery = Record::new(Event::Recovery)
                .with_detail("bytes", fragment.len().to_string())
                .with_detail("sm3", body_hash(&fragment))
                .with_detail("reason", "an unfinished line (interrupted write or full disk) was left at the end of the log; the chain continues after it");
            written.push(self.write_record(recovery)?);
        }
        let appended = self.write_record(record)?;
        let active = self.active.as_ref().ok_or_else(|| self.vanished())?;
        if durable {
            active.file.sync_data().map_err(|e| AuditError::write("syncing", &active.path, e))?;
            let head = Head { seq: appended.0.seq, hash: appended.1.clone() };
            files::write_head(&self.head, &head).map_err(|e| AuditError::write("writing", self.dir.join("HEAD"), e))?;
        }
        let rotate = active.len >= options.rotate_bytes;
        written.push(appended.clone());
        if rotate {
            written.push(self.rotate(options)?);
        }
        let (record, hash) = appended;
        Ok((Appended { seq: record.seq, hash: hash.clone() }, written))
    }

    fn vanished(&self) -> AuditError {
        AuditError::Damaged { path: self.dir.clone(), reason: "no active log file".into() }
    }

    /// Brings the writer to the true end of the chain (another process may have appended,
    /// rotated, or someone may have cut the file). Runs under the directory lock.
    fn locate(&mut self, options: &AuditOptions) -> Result<(), AuditError> {
        for _ in 0..64 {
            let (file, path) = match self.active.take() {
                Some(a) => {
                    let meta = a.file.metadata().map_err(|e| AuditError::write("examining", &a.path, e))?;
                    if meta.len() == a.len && meta.nlink() > 0 {
                        self.active = Some(a);
                        break;
                    }
                    if meta.nlink() == 0 {
                        // Our file was deleted or renamed away: find the directory's real end.
                        let path = self.active_path(options)?;
                        (open_log(&path, options.file_mode)?, path)
                    } else {
                        (a.file, a.path)
                    }
                }
                None => {
                    let path = self.active_path(options)?;
                    (open_log(&path, options.file_mode)?, path)
                }
            };
            let len = file.metadata().map_err(|e| AuditError::write("examining", &path, e))?.len();
            let tail = read_tail(&file, len).map_err(|e| AuditError::Read { path: path.clone(), source: e })?;
            self.adopt_tail(&path, &tail)?;
            let next = tail.last.as_ref().filter(|l| l.event == Event::Seal).and_then(|l| l.next.clone());
            self.active = Some(Active { file, path, len });
            let Some(next) = next else { break };
            // The chain continues in the next file (another process rotated); it may already
            // hold records, so look at it on the next round.
            let next_path = self.dir.join(safe_name(&next)?);
            let file = open_log(&next_path, options.file_mode)?;
            files::sync_dir(&self.dir).map_err(|e| AuditError::write("syncing", &self.dir, e))?;
            self.active = Some(Active { file, path: next_path, len: u64::MAX });
        }
        if let Some(head) = files::read_head(&self.head)
            && head.seq > self.seq
        {
            log::error!(
                "the audit log in {} ends at seq {} but seq {} was written: records were removed from its end; continuing after seq {} so the gap stays visible",
                self.dir.display(),
                self.seq,
                head.seq,
                head.seq
            );
            self.seq = head.seq;
            self.hash = head.hash;
        }
        Ok(())
    }

    /// True when the lock file was deleted or replaced: the writer must start afresh.
    fn stale(&self) -> bool {
        let here = self.head.metadata().ok();
        let there = std::fs::metadata(self.dir.join(files::HEAD_FILE)).ok();
        match (here, there) {
            (Some(a), Some(b)) => a.ino() != b.ino() || a.dev() != b.dev(),
            _ => true,
        }
    }

    /// Takes the chain position from a file's tail; an empty file continues the previous file.
    fn adopt_tail(&mut self, path: &Path, tail: &Tail) -> Result<(), AuditError> {
        self.fragment = tail.fragment.clone();
        if let Some(last) = &tail.last {
            self.seq = last.seq;
            self.hash = last.hash.clone();
            return Ok(());
        }
        // No record in this file: the chain ends in the file before it, if any.
        let files = files::list(&self.dir).map_err(|e| AuditError::Read { path: self.dir.clone(), source: e })?;
        let before = files.iter().rev().find(|f| f.path.as_path() < path);
        match before {
            Some(prev) => {
                let file =
                    File::open(&prev.path).map_err(|e| AuditError::Read { path: prev.path.clone(), source: e })?;
                let len = file.metadata().map_err(|e| AuditError::Read { path: prev.path.clone(), source: e })?.len();
                let prev_tail =
                    read_tail(&file, len).map_err(|e| AuditError::Read { path: prev.path.clone(), source: e })?;
                match prev_tail.last {
                    Some(last) => {
                        self.seq = last.seq;
                        self.hash = last.hash;
                    }
                    None => {
                        return Err(AuditError::Damaged {
                            path: prev.path.clone(),
                            reason: "the previous log file holds no record".into(),
                        });
                    }
                }
            }
            None => {
                self.seq = 0;
                self.hash = GENESIS.to_string();
            }
        }
        Ok(())
    }

    /// The active file: the highest-numbered one, or a new first file.
    fn active_path(&self, options: &AuditOptions) -> Result<PathBuf, AuditError> {
        let files = files::list(&self.dir).map_err(|e| AuditError::Read { path: self.dir.clone(), source: e })?;
        match files.last() {
            Some(f) => Ok(f.path.clone()),
            None => {
                let path = self.dir.join(files::file_name(1));
                drop(open_log(&path, options.file_mode)?);
                files::sync_dir(&self.dir).map_err(|e| AuditError::write("syncing", &self.dir, e))?;
                Ok(path)
            }
        }
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        let active = self
            .active
            .as_mut()
            .ok_or_else(|| AuditError::Damaged { path: PathBuf::new(), reason: "no active log file".into() })?;
        active.file.write_all(bytes).map_err(|e| AuditError::write("writing", &active.path, e))?;
        active.len += bytes.len() as u64;
        Ok(())
    }

    fn write_record(&mut self, mut record: Record) -> Result<(Record, String), AuditError> {
        record.seq = self.seq + 1;
        record.prev = self.hash.clone();
        record.time = time::now_millis();
        let (line, hash) = encode_line(&record).map_err(|e| AuditError::Damaged {
            path: self.dir.clone(),
            reason: format!("a record could not be encoded ({e})"),
        })?;
        self.write_raw(&line)?;
        self.seq = record.seq;
        self.hash = hash.clone();
        Ok((record, hash))
    }

    /// Seals the active file and starts the next; the seal is durable before the new file
    /// exists, so a crash in between leaves a seal pointing at a file the next writer creates.
    fn rotate(&mut self, options: &AuditOptions) -> Result<(Record, String), AuditError> {
        let next = files::file_name(self.seq + 2);
        let seal = Record::new(Event::Seal).with_detail("next", next.clone());
        let sealed = self.write_record(seal)?;
        let active = self.active.as_ref().ok_or_else(|| self.vanished())?;
        active.file.sync_data().map_err(|e| AuditError::write("syncing", &active.path, e))?;
        files::write_head(&self.head, &Head { seq: sealed.0.seq, hash: sealed.1.clone() })
            .map_err(|e| AuditError::write("writing", self.dir.join("HEAD"), e))?;
        let path = self.dir.join(&next);
        let file = open_log(&path, options.file_mode)?;
        files::sync_dir(&self.dir).map_err(|e| AuditError::write("syncing", &self.dir, e))?;
        self.active = Some(Active { file, path, len: 0 });
        Ok(sealed)
    }
}

/// A seal's `next` must be a plain log-file name in the same directory.
fn safe_name(name: &str) -> Result<&str, AuditError> {
    let ok = name.starts_with("audit-") && name.ends_with(".log") && !name.contains('/') && name.len() == 30;
    if ok {
        Ok(name)
    } else {
        Err(AuditError::Damaged { path: PathBuf::from(name), reason: "a seal names an unexpected next file".into() })
    }
}

fn open_log(path: &Path, mode: u32) -> Result<File, AuditError> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| AuditError::write("opening", path, e))
}
