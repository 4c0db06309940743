//! Audit log files (src/audit) as found on disk after crashes, disk faults or tampering: the
//! chain verifier behind `ukey audit verify` and the reader behind `ukey audit show` report
//! damage, never panic. Round trips where ukey writes the format: a record line re-encodes to a
//! line whose hash matches and that parses to the same record; records appended through the real
//! writer (rotating into sealed files at a fuzz-chosen size) always verify without an error.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use ukey::audit::files;
use ukey::audit::read::{Filter, read_dir};
use ukey::audit::record::{encode_line, split_line};
use ukey::audit::verify::{Anchor, verify_paths};
use ukey::audit::{AuditLog, AuditOptions, Event, Record, verify_dir};

/// A scratch directory per fuzzing process under TMPDIR (the bounded-run script points it at
/// tmpfs and removes it afterwards).
fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir();
        let dir = base.join(format!("ukey-fuzz-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

fn fresh(name: &str) -> PathBuf {
    let dir = scratch().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch subdirectory");
    dir
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Anchor::parse(text);
    }

    // The input as a log file: verified and read, whatever it holds. Reading creates nothing,
    // so the directory is made once and the file overwritten (cheaper than a fresh directory).
    let dir = scratch().join("as-found");
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).expect("scratch subdirectory");
    }
    let path = dir.join(files::file_name(1));
    std::fs::write(&path, data).expect("write scratch log");
    let report = verify_paths(&dir, &[path], None, &[]).expect("a readable file verifies to a report");
    assert!(report.records <= data.iter().filter(|b| **b == b'\n').count() as u64);
    let _ = serde_json::to_string(&report).expect("the report serialises for --json");
    let _ = read_dir(&dir, &Filter::default(), Some(3));

    // Each record line: re-encoding keeps the record, and its hash covers its body.
    let mut records = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(raw) = split_line(line) else { continue };
        let _ = raw.hash_matches();
        let Ok(record) = raw.record() else { continue };
        let (encoded, hash) = encode_line(&record).expect("a parsed record encodes");
        let again = split_line(encoded.strip_suffix(b"\n").expect("lines end in a newline")).expect("our line splits");
        assert!(again.hash_matches());
        assert_eq!(again.hash, hash);
        assert_eq!(again.record().expect("our line parses"), record);
        records.push(record);
    }

    // The real writer: whatever the records say, a log ukey writes verifies clean.
    let records: Vec<Record> =
        records.into_iter().filter(|r| !matches!(r.event, Event::Seal | Event::Recovery)).take(6).collect();
    if records.is_empty() {
        return;
    }
    let dir = fresh("written");
    let rotate_bytes = 256 + 64 * u64::from(data.first().copied().unwrap_or(0));
    let log = AuditLog::new(&dir, AuditOptions { rotate_bytes, ..AuditOptions::default() });
    let count = records.len() as u64;
    for record in records {
        log.append(record, false).expect("append to a fresh log");
    }
    let report = verify_dir(&dir, &[]).expect("verify our own log");
    assert!(report.ok(), "a log ukey wrote does not verify: {:?}", report.findings);
    assert_eq!(report.records, count + report.files.len() as u64 - 1, "every record, plus one seal per rotation");
});
