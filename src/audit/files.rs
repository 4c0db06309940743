//! The files of one audit log directory.
//!
//! ```text
//! audit/
//!   HEAD                               seq and hash of the last durable record; also the lock
//!   audit-00000000000000000001.log     records 1 … n, ending with a `seal` record
//!   audit-0000000000000000000n+1.log   the active file (the one with the highest number)
//! ```
//!
//! Files are named by the `seq` of their first record, zero-padded so names sort in chain order.
//! `HEAD` is rewritten in place after every durable append: a log cut short at a record
//! boundary still chains perfectly, but ends before the seq `HEAD` names, and the verifier says
//! so. Writers take an exclusive `flock` on `HEAD` for each append, so the holder's agent and CLI
//! can share one log.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Name of the head/lock file.
pub const HEAD_FILE: &str = "HEAD";
/// Length `HEAD` is written at (padded with spaces), so an in-place rewrite never leaves a tail.
const HEAD_LEN: usize = 128;
/// First line of `HEAD`.
const HEAD_MAGIC: &str = "ukey-audit-head 1";

/// One log file in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// Seq of its first record (from the name).
    pub first_seq: u64,
    /// The path.
    pub path: PathBuf,
}

/// The name of the file whose first record has `seq`.
pub fn file_name(first_seq: u64) -> String {
    format!("audit-{first_seq:020}.log")
}

/// The log files of a directory in chain order; other files are ignored.
pub fn list(dir: &Path) -> io::Result<Vec<LogFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(num) = name.strip_prefix("audit-").and_then(|n| n.strip_suffix(".log")) else { continue };
        if num.len() != 20 || !num.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(first_seq) = num.parse::<u64>() {
            files.push(LogFile { first_seq, path: entry.path() });
        }
    }
    files.sort_by_key(|f| f.first_seq);
    Ok(files)
}

/// What `HEAD` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Seq of the last durable record.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// Opens (creating, mode 0600) the head/lock file.
pub fn open_head(dir: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(dir.join(HEAD_FILE))
}

/// Reads `HEAD`; `None` when it is empty or not in the expected form.
pub fn read_head(file: &File) -> Option<Head> {
    let mut buf = [0u8; HEAD_LEN];
    let n = file.read_at(&mut buf, 0).ok()?;
    parse_head(buf.get(..n)?)
}

/// Reads `HEAD` of a directory without locking (for the verifier).
pub fn read_head_at(dir: &Path) -> Option<Head> {
    let text = fs::read(dir.join(HEAD_FILE)).ok()?;
    parse_head(&text)
}

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    if lines.next()? != HEAD_MAGIC {
        return None;
    }
    let mut parts = lines.next()?.split_whitespace();
    let seq = parts.next()?.parse().ok()?;
    let hash = parts.next()?.to_string();
    (hash.len() == 64).then_some(Head { seq, hash })
}

/// Rewrites `HEAD` in place.
pub fn write_head(file: &File, head: &Head) -> io::Result<()> {
    let mut text = format!("{HEAD_MAGIC}\n{} {}\n", head.seq, head.hash).into_bytes();
    text.resize(HEAD_LEN, b' ');
    file.write_all_at(&text, 0)
}

/// Makes a directory entry durable (after creating a file in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_chain_order_and_head_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [11, 1, 2] {
            fs::write(dir.path().join(file_name(seq)), b"").unwrap();
        }
        fs::write(dir.path().join("audit-notes.log"), b"").unwrap();
        let seqs: Vec<u64> = list(dir.path()).unwrap().iter().map(|f| f.first_seq).collect();
        assert_eq!(seqs, [1, 2, 11]);
        let head = open_head(dir.path()).unwrap();
        assert_eq!(read_head(&head), None);
        let h = Head { seq: 42, hash: "a".repeat(64) };
        write_head(&head, &h).unwrap();
        assert_eq!(read_head(&head), Some(h.clone()));
        assert_eq!(read_head_at(dir.path()), Some(h));
    }
}
