//! Reading records back, oldest first, with the filters of `ukey audit show`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::audit::error::AuditError;
use crate::audit::files;
use crate::audit::record::{Event, Record, split_line};
use crate::audit::time::parse_seconds;

/// Which records to show. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// At or after this time (seconds since the epoch).
    pub since: Option<u64>,
    /// Before this time.
    pub until: Option<u64>,
    /// This login name (or `uid N` as a number).
    pub account: Option<String>,
    /// Carrier id or serial containing this text.
    pub carrier: Option<String>,
    /// This event.
    pub event: Option<Event>,
    /// This operation.
    pub op: Option<String>,
    /// This result (`done`, `failed`, `refused`).
    pub result: Option<String>,
}

impl Filter {
    /// Whether a record passes.
    pub fn matches(&self, r: &Record) -> bool {
        let secs = || parse_seconds(&r.time).unwrap_or(0);
        self.since.is_none_or(|s| secs() >= s)
            && self.until.is_none_or(|u| secs() < u)
            && self
                .account
                .as_ref()
                .is_none_or(|a| r.account.as_deref() == Some(a.as_str()) || r.uid.is_some_and(|u| u.to_string() == *a))
            && self.carrier.as_ref().is_none_or(|c| {
                r.carrier.as_deref().is_some_and(|x| x.contains(c.as_str()))
                    || r.serial.as_deref().is_some_and(|x| x.contains(c.as_str()))
            })
            && self.event.is_none_or(|e| r.event == e)
            && self.op.as_ref().is_none_or(|o| r.op.as_deref() == Some(o.as_str()))
            && self.result.as_ref().is_none_or(|o| r.result.as_deref() == Some(o.as_str()))
    }
}

/// A record as read, with its hash and whether the line's hash matched.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    /// The record.
    pub record: Record,
    /// Its hash (as claimed on its line).
    pub hash: String,
}

/// The records of `dir` that pass `filter`, oldest first; only the last `limit` when given.
/// Lines that are not records are skipped here (`ukey audit verify` reports them).
pub fn read_dir(dir: &Path, filter: &Filter, limit: Option<usize>) -> Result<Vec<ReadRecord>, AuditError> {
    let list = files::list(dir).map_err(|e| AuditError::Read { path: dir.to_path_buf(), source: e })?;
    let mut out: VecDeque<ReadRecord> = VecDeque::new();
    for f in list {
        let file = File::open(&f.path).map_err(|e| AuditError::Read { path: f.path.clone(), source: e })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n =
                reader.read_until(b'\n', &mut buf).map_err(|e| AuditError::Read { path: f.path.clone(), source: e })?;
            if n == 0 {
                break;
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            let Some(raw) = split_line(&buf) else { continue };
            let Ok(record) = raw.record() else { continue };
            if !filter.matches(&record) {
                continue;
            }
            out.push_back(ReadRecord { record, hash: raw.hash.to_string() });
            if let Some(l) = limit
                && out.len() > l
            {
                out.pop_front();
            }
        }
    }
    Ok(out.into())
}
