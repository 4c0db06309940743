//! `ukey audit verify`: checks a log's chain and says exactly where it is broken.
//!
//! What is found, and how it is reported (file, line and seq of each finding):
//! - an **edited** record: its body no longer hashes to the hash on its line;
//! - an edited record whose hash was **recomputed**: the next record no longer chains to it;
//! - a **deleted** record: a gap in the seq numbers (and a broken chain across it);
//! - **reordered** records: a seq that turns up after a later one;
//! - a **truncated** log: an unfinished last line written durably, a rotated file without its
//!   seal, or a log that ends before the seq `HEAD` says was written;
//! - a **garbled** line: anything that is not a record (unless a later writer acknowledged it as
//!   an interrupted write with a `recovery` record naming its length and SM3 — then it is a
//!   warning).
//!
//! Uses that started (an `intent` record) but have no outcome are listed as warnings: the
//! process stopped during the use. Anchors (`--anchor SEQ:HASH`, hashes kept elsewhere, e.g. in
//! the central syslog) prove the log was not rewritten wholesale before them: a local chain
//! alone cannot, because whoever rewrites every record can recompute every hash.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::error::AuditError;
use crate::audit::files::{self, Head};
use crate::audit::record::{Event, GENESIS, body_hash, split_line};

/// How many recent hashes are kept to check the chain of records that arrive out of order.
const WINDOW: usize = 4096;

/// A hash (and optionally the seq it must be at) kept outside the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    /// The seq, when known.
    pub seq: Option<u64>,
    /// The record hash.
    pub hash: String,
}

impl Anchor {
    /// Reads `HASH` or `SEQ:HASH`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (seq, hash) = match text.split_once(':') {
            Some((s, h)) => (Some(s.trim().parse::<u64>().map_err(|_| format!("`{s}` is not a seq number"))?), h),
            None => (None, text),
        };
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{text}` is not an anchor: give the 64-hex-digit record hash, optionally as SEQ:HASH"
            ));
        }
        Ok(Anchor { seq, hash })
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The log was tampered with or damaged: verification fails.
    Error,
    /// Worth knowing, not a break in the chain.
    Warning,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A record's content does not match its hash.
    Altered,
    /// A record does not chain to the one before it.
    Unchained,
    /// Records are missing.
    Missing,
    /// A record is out of order.
    Reordered,
    /// A record appears twice.
    Duplicate,
    /// A line is not a record.
    Garbled,
    /// The log or a file was cut short.
    Truncated,
    /// An interrupted write that a later writer acknowledged.
    InterruptedWrite,
    /// A use has no outcome record.
    Interrupted,
    /// The log starts after seq 1 (older files are gone).
    StartsLate,
    /// An anchor was not found.
    AnchorMissing,
    /// Something about the files (a seal naming a file that is not there, records after a seal).
    Files,
}

/// One thing the verifier found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What kind.
    pub kind: FindingKind,
    /// The file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line in it, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The seq concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// What it means, for a person.
    pub message: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was checked.
    pub dir: PathBuf,
    /// Files checked.
    pub files: Vec<String>,
    /// Records read.
    pub records: u64,
    /// First seq seen.
    pub first_seq: Option<u64>,
    /// Last seq seen.
    pub last_seq: Option<u64>,
    /// Hash of the last record: a new anchor to keep elsewhere.
    pub last_hash: Option<String>,
    /// What `HEAD` says.
    pub head: Option<HeadView>,
    /// Anchors that were found.
    pub anchors_found: Vec<Anchor>,
    /// Uses without an outcome record.
    pub interrupted: u64,
    /// Everything found, in file order.
    pub findings: Vec<Finding>,
}

/// `HEAD` for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeadView {
    /// Seq.
    pub seq: u64,
    /// Hash.
    pub hash: String,
}

impl Report {
    /// True when nothing is an error.
    pub fn ok(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Error).count()
    }
}

/// What the verifier needs from a record body.
#[derive(Deserialize)]
struct Link<'a> {
    seq: u64,
    #[serde(borrow)]
    prev: Cow<'a, str>,
    #[serde(default)]
    event: Event,
    #[serde(default)]
    intent: Option<u64>,
    #[serde(default, borrow)]
    detail: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

/// A line the parallel pass found to be a record: what the chain needs, and whether its body
/// hashes to the hash on the line.
struct Checked<'a> {
    link: Link<'a>,
    hash: &'a str,
    hash_ok: bool,
}

/// Complete lines read from a log file, checked together.
#[derive(Default)]
struct Batch {
    text: Vec<u8>,
    /// Each complete line's bytes in `text`, without its newline.
    lines: Vec<std::ops::Range<usize>>,
}

impl Batch {
    /// About 8 MiB of log per batch: large enough to share among threads, small enough to stay
    /// in memory whatever the log's size.
    const BYTES: usize = 8 << 20;

    /// Reads the next complete lines; returns the length of an unfinished last line (the file
    /// ends without its newline), which ends the file.
    fn fill(&mut self, reader: &mut impl BufRead) -> std::io::Result<Option<usize>> {
        self.text.clear();
        self.lines.clear();
        while self.text.len() < Self::BYTES {
            let start = self.text.len();
            let n = reader.read_until(b'\n', &mut self.text)?;
            if n == 0 {
                break;
            }
            if self.text.last() != Some(&b'\n') {
                self.text.truncate(start);
                return Ok(Some(n));
            }
            self.lines.push(start..self.text.len() - 1);
        }
        Ok(None)
    }

    /// Splits, hashes and parses every line, on all cores (`None`: not a record).
    fn check(&self) -> Vec<Option<Checked<'_>>> {
        let check_one = |range: &std::ops::Range<usize>| {
            let raw = split_line(self.text.get(range.clone())?)?;
            let link: Link<'_> = serde_json::from_slice(raw.body).ok()?;
            Some(Checked { link, hash: raw.hash, hash_ok: raw.hash_matches() })
        };
        // Asking for the core count reads cgroup files; a short log is checked without asking.
        let threads = if self.lines.len() < 1024 {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
        };
        if threads == 1 {
            return self.lines.iter().map(check_one).collect();
        }
        let chunk = self.lines.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = self
                .lines
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(check_one).collect::<Vec<_>>()))
                .collect();
            // A checker thread cannot panic on log content (no indexing, no unwrap); if one
            // did, its lines count as not records rather than taking `audit verify` down.
            parts
                .into_iter()
                .zip(self.lines.chunks(chunk))
                .flat_map(|(part, lines)| part.join().unwrap_or_else(|_| lines.iter().map(|_| None).collect()))
                .collect()
        })
    }
}

#[derive(Debug, Clone)]
struct Pos {
    file: String,
    line: u64,
}

/// Verifies every log file of `dir`, with the anchors given.
pub fn verify_dir(dir: &Path, anchors: &[Anchor]) -> Result<Report, AuditError> {
    let list = files::list(dir).map_err(|e| AuditError::Read { path: dir.to_path_buf(), source: e })?;
    let paths: Vec<PathBuf> = list.into_iter().map(|f| f.path).collect();
    let head = files::read_head_at(dir);
    verify_paths(dir, &paths, head, anchors)
}

/// Verifies the given files in order (the chain runs across them).
pub fn verify_paths(
    dir: &Path,
    paths: &[PathBuf],
    head: Option<Head>,
    anchors: &[Anchor],
) -> Result<Report, AuditError> {
    let mut v = Verifier::new(anchors);
    for (i, path) in paths.iter().enumerate() {
        let last_file = i + 1 == paths.len();
        let next_name = paths.get(i + 1).and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        v.file(path, last_file, next_name.as_deref())?;
    }
    v.finish(dir, paths, head)
}

struct Verifier<'a> {
    anchors: &'a [Anchor],
    anchors_found: Vec<Anchor>,
    findings: Vec<Finding>,
    records: u64,
    first_seq: Option<u64>,
    expected: Option<u64>,
    last_seq: Option<u64>,
    last_hash: Option<String>,
    last_pos: Option<Pos>,
    last_complete_seq: Option<u64>,
    recent: VecDeque<(u64, String)>,
    recent_index: HashMap<u64, String>,
    gaps: Vec<(u64, u64, Option<Pos>, Pos)>,
    late: Vec<(u64, Pos)>,
    seen_max: u64,
    intents: BTreeMap<u64, Pos>,
    garbled: Option<(Pos, usize, String)>,
    fragment: Option<(Pos, usize)>,
    sealed: Option<(Pos, String)>,
}

impl<'a> Verifier<'a> {
    fn new(anchors: &'a [Anchor]) -> Self {
        Verifier {
            anchors,
            anchors_found: Vec::new(),
            findings: Vec::new(),
            records: 0,
            first_seq: None,
            expected: None,
            last_seq: None,
            last_hash: None,
            last_pos: None,
            last_complete_seq: None,
            recent: VecDeque::with_capacity(WINDOW),
            recent_index: HashMap::with_capacity(WINDOW),
            gaps: Vec::new(),
            late: Vec::new(),
            seen_max: 0,
            intents: BTreeMap::new(),
            garbled: None,
            fragment: None,
            sealed: None,
        }
    }

    fn error(&mut self, kind: FindingKind, pos: Option<&Pos>, seq: Option<u64>, message: String) {
        self.push(Severity::Error, kind, pos, seq, message);
    }

    fn warn(&mut self, kind: FindingKind, pos: Option<&Pos>, seq: Option<u64>, message: String) {
        self.push(Severity::Warning, kind, pos, seq, message);
    }

    fn push(&mut self, severity: Severity, kind: FindingKind, pos: Option<&Pos>, seq: Option<u64>, message: String) {
        self.findings.push(Finding {
            severity,
            kind,
            file: pos.map(|p| p.file.clone()),
            line: pos.map(|p| p.line),
            seq,
            message,
        });
    }

    fn file(&mut self, path: &Path, last_file: bool, next_name: Option<&str>) -> Result<(), AuditError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some((pos, next)) = self.sealed.take()
            && next != name
        {
            self.error(
                FindingKind::Files,
                Some(&pos),
                None,
                format!(
                    "the seal at line {} of {} says the chain continues in {next}, but the next file is {name}",
                    pos.line, pos.file
                ),
            );
        }
        let file = File::open(path).map_err(|e| AuditError::Read { path: path.to_path_buf(), source: e })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut batch = Batch::default();
        let mut line_no = 0u64;
        let mut sealed_here: Option<(Pos, String)> = None;
        loop {
            // Lines are read in batches whose hashes and bodies are checked in parallel; the
            // chain itself is then followed in order.
            let fragment =
                batch.fill(&mut reader).map_err(|e| AuditError::Read { path: path.to_path_buf(), source: e })?;
            let checked = batch.check();
            for (range, checked) in batch.lines.iter().zip(checked) {
                line_no += 1;
                let pos = Pos { file: name.clone(), line: line_no };
                if let Some((seal_pos, _)) = &sealed_here {
                    let seal_line = seal_pos.line;
                    self.error(
                        FindingKind::Files,
                        Some(&pos),
                        None,
                        format!("line {line_no} of {name} comes after the file's seal (line {seal_line}); a sealed file gets no more records"),
                    );
                    sealed_here = None;
                }
                let line = batch.text.get(range.clone()).unwrap_or_default();
                if let Some(seal) = self.line(line, checked, pos) {
                    sealed_here = Some(seal);
                }
            }
            if let Some(len) = fragment {
                self.fragment = Some((Pos { file: name.clone(), line: line_no + 1 }, len));
                break;
            }
            if batch.lines.is_empty() {
                break;
            }
        }
        if let Some((pos, _)) = self.fragment.as_ref().filter(|_| !last_file).cloned() {
            self.fragment = None;
            self.error(
                FindingKind::Truncated,
                Some(&pos),
                None,
                format!(
                    "line {} of {} is unfinished, and the log continues in another file: the file was cut",
                    pos.line, pos.file
                ),
            );
        }
        if !last_file {
            match sealed_here {
                Some(seal) => self.sealed = Some(seal),
                None => {
                    let after = next_name.unwrap_or("the next file");
                    self.error(
                        FindingKind::Truncated,
                        Some(&Pos { file: name.clone(), line: line_no }),
                        self.last_seq,
                        format!(
                            "{name} does not end with its seal record although the log continues in {after}: its end was cut off (records removed)"
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// One complete line, already checked (`None`: not a record); returns its position and next
    /// file when it is a seal.
    fn line(&mut self, line: &[u8], checked: Option<Checked<'_>>, pos: Pos) -> Option<(Pos, String)> {
        let Some(Checked { link, hash, hash_ok }) = checked else {
            self.garbled_line(pos, line);
            return None;
        };
        self.check_garbled_before(&link, &pos);
        self.records += 1;
        let seq = link.seq;
        if !hash_ok {
            self.error(
                FindingKind::Altered,
                Some(&pos),
                Some(seq),
                format!(
                    "record seq {seq} (line {} of {}) was altered: its content does not match its hash",
                    pos.line, pos.file
                ),
            );
        }
        self.chain(seq, &link.prev, &pos);
        for anchor in self.anchors {
            if anchor.hash == hash && anchor.seq.is_none_or(|s| s == seq) {
                self.anchors_found.push(anchor.clone());
            }
        }
        match link.event {
            Event::Intent => {
                self.intents.insert(seq, pos.clone());
            }
            _ => {
                if let Some(intent) = link.intent {
                    self.intents.remove(&intent);
                }
            }
        }
        self.remember(seq, hash.to_string());
        self.last_seq = Some(seq);
        self.last_hash = Some(hash.to_string());
        self.last_pos = Some(pos.clone());
        self.last_complete_seq = Some(seq);
        if link.event == Event::Seal {
            let next = link.detail.get("next").map(|n| n.to_string()).unwrap_or_default();
            return Some((pos, next));
        }
        None
    }

    fn garbled_line(&mut self, pos: Pos, line: &[u8]) {
        if let Some((p, _, _)) = self.garbled.take() {
            self.error(
                FindingKind::Garbled,
                Some(&p),
                None,
                format!("line {} of {} is not an audit record (damaged, or text was inserted)", p.line, p.file),
            );
        }
        self.garbled = Some((pos, line.len(), body_hash(line)));
    }

    /// A garbled line is forgiven only when the very next record is a recovery naming it.
    fn check_garbled_before(&mut self, link: &Link<'_>, pos: &Pos) {
        let Some((gpos, len, sm3)) = self.garbled.take() else { return };
        let acknowledged = link.event == Event::Recovery
            && link.detail.get("bytes").map(|b| b.as_ref()) == Some(len.to_string().as_str())
            && link.detail.get("sm3").map(|s| s.as_ref()) == Some(sm3.as_str());
        if acknowledged {
            self.warn(
                FindingKind::InterruptedWrite,
                Some(&gpos),
                None,
                format!(
                    "line {} of {} is the unfinished end of an interrupted write ({len} bytes), acknowledged by the recovery record at line {}",
                    gpos.line, gpos.file, pos.line
                ),
            );
        } else {
            self.error(
                FindingKind::Garbled,
                Some(&gpos),
                None,
                format!("line {} of {} is not an audit record (damaged, or text was inserted)", gpos.line, gpos.file),
            );
        }
    }

    fn remember(&mut self, seq: u64, hash: String) {
        if self.recent.len() == WINDOW
            && let Some((old, _)) = self.recent.pop_front()
        {
            self.recent_index.remove(&old);
        }
        self.recent.push_back((seq, hash.clone()));
        self.recent_index.insert(seq, hash);
    }

    fn chain(&mut self, seq: u64, prev: &str, pos: &Pos) {
        // ukey numbers records from 1 and never reaches u64::MAX; either bound comes only from a
        // forged or damaged line (found by the audit_log fuzz target: seq 0 overflowed below).
        if seq == 0 || seq == u64::MAX {
            self.error(
                FindingKind::Garbled,
                Some(pos),
                Some(seq),
                format!(
                    "line {} of {} claims seq {seq}, which ukey never writes (records are numbered from 1)",
                    pos.line, pos.file
                ),
            );
            return;
        }
        let Some(expected) = self.expected else {
            self.first_seq = Some(seq);
            if seq == 1 {
                if prev != GENESIS {
                    self.error(
                        FindingKind::Unchained,
                        Some(pos),
                        Some(seq),
                        format!(
                            "record seq 1 (line {} of {}) does not start a chain (its prev is not zero)",
                            pos.line, pos.file
                        ),
                    );
                }
            } else {
                self.warn(
                    FindingKind::StartsLate,
                    Some(pos),
                    Some(seq),
                    format!(
                        "the log starts at seq {seq}: records 1..{} are in files no longer here (rotated away); keep an anchor of them to check this boundary",
                        seq - 1
                    ),
                );
            }
            self.expected = Some(seq + 1);
            self.seen_max = seq;
            return;
        };
        if seq == expected {
            let before = seq.checked_sub(1).and_then(|s| self.recent_index.get(&s));
            if let Some(h) = before
                && h != prev
            {
                let at = self.last_pos.clone();
                self.error(
                    FindingKind::Unchained,
                    Some(pos),
                    Some(seq),
                    format!(
                        "record seq {seq} (line {} of {}) does not chain to record seq {}{}: one of the two was rewritten (with a recomputed hash) or replaced",
                        pos.line,
                        pos.file,
                        seq - 1,
                        at.map(|p| format!(" (line {} of {})", p.line, p.file)).unwrap_or_default()
                    ),
                );
            }
            self.expected = Some(seq + 1);
        } else if seq > expected {
            self.gaps.push((expected, seq - 1, self.last_pos.clone(), pos.clone()));
            self.expected = Some(seq + 1);
        } else {
            self.late.push((seq, pos.clone()));
        }
        self.seen_max = self.seen_max.max(seq);
    }

    fn finish(mut self, dir: &Path, paths: &[PathBuf], head: Option<Head>) -> Result<Report, AuditError> {
        if let Some((p, _, _)) = self.garbled.take() {
            self.error(
                FindingKind::Garbled,
                Some(&p),
                None,
                format!("line {} of {} is not an audit record (damaged, or text was inserted)", p.line, p.file),
            );
        }
        self.explain_gaps();
        for (seq, pos) in std::mem::take(&mut self.intents) {
            self.warn(
                FindingKind::Interrupted,
                Some(&pos),
                Some(seq),
                format!(
                    "the use begun at seq {seq} (line {} of {}) has no outcome record: the process stopped during it (killed or crashed); the carrier may or may not have done it",
                    pos.line, pos.file
                ),
            );
        }
        let interrupted = self.findings.iter().filter(|f| f.kind == FindingKind::Interrupted).count() as u64;
        self.check_end(head.as_ref());
        for anchor in self.anchors {
            if !self.anchors_found.contains(anchor) {
                let at = anchor.seq.map(|s| format!("seq {s}, ")).unwrap_or_default();
                self.findings.push(Finding {
                    severity: Severity::Error,
                    kind: FindingKind::AnchorMissing,
                    file: None,
                    line: None,
                    seq: anchor.seq,
                    message: format!(
                        "the anchor ({at}hash {}) is not in the log: the log was rewritten or cut before that record",
                        anchor.hash
                    ),
                });
            }
        }
        Ok(Report {
            dir: dir.to_path_buf(),
            files: paths.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect(),
            records: self.records,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            last_hash: self.last_hash,
            head: head.map(|h| HeadView { seq: h.seq, hash: h.hash }),
            anchors_found: self.anchors_found,
            interrupted,
            findings: self.findings,
        })
    }

    /// Turns gaps and late records into "missing" and "reordered" findings.
    fn explain_gaps(&mut self) {
        let gaps = std::mem::take(&mut self.gaps);
        let mut late = std::mem::take(&mut self.late);
        for (from, to, before, at) in gaps {
            let moved: Vec<(u64, Pos)> = late.iter().filter(|(s, _)| (from..=to).contains(s)).cloned().collect();
            late.retain(|(s, _)| !(from..=to).contains(s));
            for (seq, pos) in &moved {
                self.error(
                    FindingKind::Reordered,
                    Some(pos),
                    Some(*seq),
                    format!(
                        "record seq {seq} (line {} of {}) is out of order: it belongs before line {} of {}",
                        pos.line, pos.file, at.line, at.file
                    ),
                );
            }
            // The gap minus the records found elsewhere, walked by the records found (a gap can
            // span billions of numbers when a damaged or forged seq jumps ahead).
            let mut moved_seqs: Vec<u64> = moved.iter().map(|(s, _)| *s).collect();
            moved_seqs.sort_unstable();
            moved_seqs.dedup();
            let mut runs = Vec::new();
            let mut next = Some(from);
            for s in moved_seqs {
                if let Some(n) = next.filter(|n| s > *n) {
                    runs.push((n, s - 1));
                }
                next = s.checked_add(1);
            }
            if let Some(n) = next.filter(|n| *n <= to) {
                runs.push((n, to));
            }
            for (a, b) in runs {
                let which = if a == b { format!("record seq {a} is") } else { format!("records seq {a}..{b} are") };
                let place = match &before {
                    Some(p) => format!("between line {} of {} and line {} of {}", p.line, p.file, at.line, at.file),
                    None => format!("before line {} of {}", at.line, at.file),
                };
                self.error(FindingKind::Missing, Some(&at), Some(a), format!("{which} missing {place}: deleted"));
            }
        }
        for (seq, pos) in late {
            self.error(
                FindingKind::Duplicate,
                Some(&pos),
                Some(seq),
                format!(
                    "record seq {seq} (line {} of {}) appears a second time: a copied or replayed record",
                    pos.line, pos.file
                ),
            );
        }
    }

    /// The end of the log against `HEAD`, and an unfinished last line.
    fn check_end(&mut self, head: Option<&Head>) {
        let last = self.last_complete_seq.unwrap_or(0);
        let durable_cut = head.is_some_and(|h| h.seq > last);
        if let Some((pos, len)) = self.fragment.take() {
            if durable_cut {
                self.error(
                    FindingKind::Truncated,
                    Some(&pos),
                    None,
                    format!(
                        "line {} of {} is cut off after {len} bytes: the log was truncated in the middle of a record",
                        pos.line, pos.file
                    ),
                );
            } else {
                self.warn(
                    FindingKind::InterruptedWrite,
                    Some(&pos),
                    None,
                    format!(
                        "line {} of {} is unfinished ({len} bytes): a write was interrupted; the next writer acknowledges it with a recovery record",
                        pos.line, pos.file
                    ),
                );
            }
        }
        match head {
            Some(h) if h.seq > last => {
                let at = self.last_pos.clone();
                self.error(
                    FindingKind::Truncated,
                    at.as_ref(),
                    Some(last + 1),
                    format!(
                        "the log ends at seq {last}{} but seq {} was written (HEAD): records {}..{} were removed from the end",
                        at.as_ref().map(|p| format!(" (line {} of {})", p.line, p.file)).unwrap_or_default(),
                        h.seq,
                        last + 1,
                        h.seq
                    ),
                );
            }
            Some(h) if h.seq == last && self.last_hash.as_deref().is_some_and(|l| l != h.hash) => {
                let at = self.last_pos.clone();
                self.error(
                    FindingKind::Altered,
                    at.as_ref(),
                    Some(last),
                    format!(
                        "the last record (seq {last}) is not the one that was written: HEAD has another hash for it"
                    ),
                );
            }
            None if self.records > 0 => self.warn(
                FindingKind::Files,
                None,
                None,
                "there is no HEAD file: whether records were cut from the end cannot be checked here (use an anchor)"
                    .into(),
            ),
            _ => {}
        }
    }
}
