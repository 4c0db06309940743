//! Finding where a log file's chain ends, reading backwards from the end of the file, so a
//! writer can continue a log of any size without reading all of it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::audit::record::{Event, split_line};

/// First window read from the end; doubled (up to [`MAX_WINDOW`]) until a record is found.
const FIRST_WINDOW: u64 = 16 * 1024;
/// Largest window read: a log whose last megabytes hold no record is damaged beyond continuing.
const MAX_WINDOW: u64 = 4 * 1024 * 1024;

/// The end of a log file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tail {
    /// The last record in line format: its seq, claimed hash, event and `detail.next` (seals).
    pub last: Option<LastRecord>,
    /// Bytes after the last newline: an unfinished line (an interrupted write, or a cut).
    pub fragment: Vec<u8>,
    /// File length.
    pub len: u64,
}

/// The chain position at the end of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRecord {
    /// Its seq.
    pub seq: u64,
    /// The hash its line claims (the next record chains to this; if the body was altered the
    /// verifier reports it at that record).
    pub hash: String,
    /// Its event.
    pub event: Event,
    /// For a seal: the file the chain continues in.
    pub next: Option<String>,
}

/// The last record of a log directory (read-only, no lock): the newest file that holds one.
pub fn chain_end(dir: &std::path::Path) -> io::Result<Option<LastRecord>> {
    for f in crate::audit::files::list(dir)?.iter().rev() {
        let file = File::open(&f.path)?;
        let len = file.metadata()?.len();
        if let Some(last) = read_tail(&file, len)?.last {
            return Ok(Some(last));
        }
    }
    Ok(None)
}

/// Reads the end of `file` (of length `len`).
pub fn read_tail(file: &File, len: u64) -> io::Result<Tail> {
    let mut window = FIRST_WINDOW;
    loop {
        let start = len.saturating_sub(window);
        let size = usize::try_from(len - start).map_err(io::Error::other)?;
        let mut buf = vec![0u8; size];
        file.read_exact_at(&mut buf, start)?;
        let complete_end = buf.iter().rposition(|b| *b == b'\n').map(|p| p + 1).unwrap_or(0);
        let fragment = if start == 0 || complete_end > 0 {
            buf.get(complete_end..).unwrap_or_default().to_vec()
        } else {
            Vec::new()
        };
        if let Some(last) = last_record(buf.get(..complete_end).unwrap_or_default(), start == 0) {
            return Ok(Tail { last: Some(last), fragment, len });
        }
        if start == 0 {
            return Ok(Tail { last: None, fragment, len });
        }
        if window >= MAX_WINDOW {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no readable record in the last {} KiB", MAX_WINDOW / 1024),
            ));
        }
        window *= 2;
    }
}

/// The last line of `complete` (whole lines, each ending in a newline) that is a record. When
/// `from_file_start` is false the first line may be cut by the window and is skipped.
fn last_record(complete: &[u8], from_file_start: bool) -> Option<LastRecord> {
    let mut lines: Vec<&[u8]> = complete.split(|b| *b == b'\n').collect();
    lines.pop(); // after the final newline
    if !from_file_start && !lines.is_empty() {
        lines.remove(0);
    }
    lines.iter().rev().find_map(|line| {
        let raw = split_line(line)?;
        let record = raw.record().ok()?;
        Some(LastRecord {
            seq: record.seq,
            hash: raw.hash.to_string(),
            event: record.event,
            next: record.detail.get("next").cloned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::audit::record::{GENESIS, Record, encode_line};

    fn line(seq: u64) -> (Vec<u8>, String) {
        let mut r = Record::new(Event::Use);
        r.seq = seq;
        r.prev = GENESIS.into();
        r.reason = Some("x".repeat(300));
        encode_line(&r).unwrap()
    }

    #[test]
    fn finds_the_last_record_past_a_fragment_and_across_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = File::create(&path).unwrap();
        let mut last_hash = String::new();
        for seq in 1..=200 {
            let (l, h) = line(seq);
            f.write_all(&l).unwrap();
            last_hash = h;
        }
        f.write_all(b"{\"hash\":\"abc").unwrap();
        drop(f);
        let f = File::open(&path).unwrap();
        let len = f.metadata().unwrap().len();
        let tail = read_tail(&f, len).unwrap();
        let last = tail.last.unwrap();
        assert_eq!((last.seq, last.hash), (200, last_hash));
        assert_eq!(tail.fragment, b"{\"hash\":\"abc");
        let empty = File::create(dir.path().join("e")).unwrap();
        assert_eq!(read_tail(&empty, 0).unwrap(), Tail::default());
    }
}
