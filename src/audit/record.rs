//! One audit record and its line in the log file.
//!
//! A line is `{"hash":"<64 hex>","record":<body>}` followed by a newline, where `<body>` is the
//! record as compact JSON and `hash` is SM3 over exactly the bytes of `<body>`. The body carries
//! `seq` (1, 2, 3, … with no gaps) and `prev` (the previous record's hash; 64 zeros for the
//! first), so every record is chained to the one before it. Every line is valid JSON (`jq
//! .record` reads a log), yet the verifier finds the hashed bytes at fixed offsets without
//! re-serialising anything: a record is checked against exactly what was written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sm3::{Digest, Sm3};

/// `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Text before the hash on every line.
const LINE_HEAD: &[u8] = b"{\"hash\":\"";
/// Text between the hash and the body.
const LINE_MID: &[u8] = b"\",\"record\":";
/// Length of a hex SM3 hash.
const HASH_HEX: usize = 64;
/// Offset of the body on a line.
const BODY_AT: usize = LINE_HEAD.len() + HASH_HEX + LINE_MID.len();

/// What kind of event a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A use is about to touch a carrier (written before the carrier is asked, so a use that
    /// dies half-way — SIGKILL, crash — is still on record).
    Intent,
    /// A use finished (done or failed); `intent` names the intent record it closes.
    #[default]
    Use,
    /// A use was refused by the custody policy, or because the log could not be written.
    Refusal,
    /// A helpdesk action: bind, rebind, suspend, revoke, unblock, reset, tag.
    Helpdesk,
    /// Something a reviewer should know (policy mode, an anchor the operator asked for).
    Notice,
    /// A writer found an incomplete line at the end of the log (an interrupted write) and
    /// continued the chain after it; `detail` says how many bytes and their SM3.
    Recovery,
    /// The last record of a rotated file; `detail.next` names the file the chain continues in.
    Seal,
}

impl Event {
    /// The name used in JSON, filters and syslog MSGIDs.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Intent => "intent",
            Event::Use => "use",
            Event::Refusal => "refusal",
            Event::Helpdesk => "helpdesk",
            Event::Notice => "notice",
            Event::Recovery => "recovery",
            Event::Seal => "seal",
        }
    }

    /// Parses a name from the command line.
    pub fn parse(text: &str) -> Option<Self> {
        [Event::Intent, Event::Use, Event::Refusal, Event::Helpdesk, Event::Notice, Event::Recovery, Event::Seal]
            .into_iter()
            .find(|e| e.as_str() == text)
    }
}

/// One audit record. Callers fill in what they know; the log sets `seq`, `prev` and `time`.
/// Field order is the order in the file (serde writes declaration order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// SM3 (hex) of the previous record's body; [`GENESIS`] for the first.
    pub prev: String,
    /// When, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// What happened.
    pub event: Event,
    /// OS user id of the account that asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Login name of that account (resolved from the uid, not from the environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The client: a web origin, or `EXE (pid N)` for a local program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Carrier id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Carrier serial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Carrier model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// SHA-256 fingerprint of the certificate involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// The operation (`sign`, `authenticate`, `bind`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// SM3 (hex) of the data signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sm3: Option<String>,
    /// `done`, `failed`, `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Why: the refusal text, or the error kind of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For an outcome: the `seq` of the intent record it closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<u64>,
    /// The policy in force: `personal`, `enforced`, `development`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The holder the carrier is registered to, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Anything else (helpdesk parameters, recovery and seal details).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, String>,
}

impl Record {
    /// A record of `event`; the rest is filled in by the caller.
    pub fn new(event: Event) -> Self {
        Record { event, ..Record::default() }
    }

    /// Adds a detail entry.
    pub fn with_detail(mut self, key: &str, value: impl Into<String>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }
}

/// SM3 of a record body, lower-case hex.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sm3::digest(body))
}

/// Serialises a record (with `seq`, `prev`, `time` set) into its line, newline included; returns
/// the line and the record's hash.
pub fn encode_line(record: &Record) -> Result<(Vec<u8>, String), serde_json::Error> {
    let body = serde_json::to_vec(record)?;
    let hash = body_hash(&body);
    let mut line = Vec::with_capacity(BODY_AT + body.len() + 2);
    line.extend_from_slice(LINE_HEAD);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(LINE_MID);
    line.extend_from_slice(&body);
    line.extend_from_slice(b"}\n");
    Ok((line, hash))
}

/// A line split into its parts, not yet checked.
#[derive(Debug, Clone, Copy)]
pub struct RawLine<'a> {
    /// The hash the line claims (64 hex characters).
    pub hash: &'a str,
    /// The exact bytes the hash is over.
    pub body: &'a [u8],
}

impl RawLine<'_> {
    /// Whether the claimed hash is SM3 of the body.
    pub fn hash_matches(&self) -> bool {
        let digest = Sm3::digest(self.body);
        hex_eq(self.hash.as_bytes(), &digest)
    }

    /// Parses the body.
    pub fn record(&self) -> Result<Record, serde_json::Error> {
        serde_json::from_slice(self.body)
    }
}

/// Splits a line (without its newline) into hash and body; `None` when it is not in the log's
/// line format at all.
pub fn split_line(line: &[u8]) -> Option<RawLine<'_>> {
    if line.len() < BODY_AT + 3 || !line.starts_with(LINE_HEAD) || line.last() != Some(&b'}') {
        return None;
    }
    let hash = line.get(LINE_HEAD.len()..LINE_HEAD.len() + HASH_HEX)?;
    if !hash.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
        return None;
    }
    if line.get(LINE_HEAD.len() + HASH_HEX..BODY_AT)? != LINE_MID {
        return None;
    }
    let body = line.get(BODY_AT..line.len() - 1)?;
    let hash = std::str::from_utf8(hash).ok()?;
    Some(RawLine { hash, body })
}

/// Compares lower-case hex with raw bytes without allocating.
fn hex_eq(hex_text: &[u8], raw: &[u8]) -> bool {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    hex_text.len() == raw.len() * 2
        && raw.iter().enumerate().all(|(i, b)| {
            hex_text.get(2 * i) == DIGITS.get(usize::from(b >> 4))
                && hex_text.get(2 * i + 1) == DIGITS.get(usize::from(b & 15))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_and_its_hash_covers_the_body() {
        let mut r = Record::new(Event::Use);
        r.seq = 1;
        r.prev = GENESIS.into();
        r.time = "2024-01-01T00:00:00.000Z".into();
        r.op = Some("sign".into());
        let (line, hash) = encode_line(&r).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let text = &line[..line.len() - 1];
        let v: serde_json::Value = serde_json::from_slice(text).unwrap();
        assert_eq!(v["hash"], hash.as_str());
        assert_eq!(v["record"]["op"], "sign");
        let raw = split_line(text).unwrap();
        assert!(raw.hash_matches());
        assert_eq!(raw.record().unwrap(), r);
        let mut edited = text.to_vec();
        let at = edited.windows(4).position(|w| w == b"sign").unwrap();
        edited[at] = b'S';
        assert!(!split_line(&edited).unwrap().hash_matches());
        assert!(split_line(b"garbage").is_none());
        assert!(split_line(&text[..text.len() - 3]).is_none());
    }

    #[test]
    fn sm3_matches_the_standard_vector() {
        assert_eq!(body_hash(b"abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
    }
}
