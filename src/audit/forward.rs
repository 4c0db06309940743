//! Forwarding every audit record to the system log, so a unit collects them centrally with the
//! log system it already runs (rsyslog, syslog-ng, journald), and so a copy of each record's hash
//! leaves the machine — the anchor that defeats an attacker who rewrites a whole local chain.
//!
//! Two targets:
//! - `syslog`: RFC 5424 over the local syslog socket (`/dev/log`, a Unix datagram socket). The
//!   record's fields travel as structured data `[ukey@32473 seq="…" hash="…" prev="…" …]`
//!   (32473 is the example enterprise number of RFC 5612; a unit with its own number can
//!   rewrite the SD-ID in its collector). Facility `authpriv`: these are authorisation records.
//! - `journald`: the journal's native protocol (`/run/systemd/journal/socket`), one `UKEY_*`
//!   field per record field, so `journalctl UKEY_ACCOUNT=alice` filters.
//!
//! Sending never blocks and never fails a use: the local, fsynced chain is the record of
//! authority; a forwarding failure is logged (once per run at `warn`).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::audit::record::{Event, Record};

/// Structured-data id of ukey's syslog records.
pub const SD_ID: &str = "ukey@32473";
/// Default syslog socket.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";
/// Default journald socket.
pub const DEFAULT_JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";
/// Syslog facility `authpriv` (10).
const FACILITY_AUTHPRIV: u8 = 10;

/// Where records are forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardKind {
    /// Not forwarded.
    #[default]
    None,
    /// RFC 5424 to the syslog socket.
    Syslog,
    /// Native journald protocol.
    Journald,
}

/// A forwarding target, ready to send.
#[derive(Debug)]
pub struct Forwarder {
    kind: ForwardKind,
    socket_path: PathBuf,
    socket: UnixDatagram,
    hostname: String,
    warned: AtomicBool,
}

impl Forwarder {
    /// A forwarder to `socket` (the default socket of `kind` when `None`); `None` for
    /// [`ForwardKind::None`] or when no datagram socket can be made.
    pub fn new(kind: ForwardKind, socket: Option<&Path>) -> Option<Self> {
        let default = match kind {
            ForwardKind::None => return None,
            ForwardKind::Syslog => DEFAULT_SYSLOG_SOCKET,
            ForwardKind::Journald => DEFAULT_JOURNALD_SOCKET,
        };
        let socket_path = socket.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(default));
        let sock = match UnixDatagram::unbound() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("audit forwarding is off: cannot create a datagram socket ({e})");
                return None;
            }
        };
        if let Err(e) = sock.set_nonblocking(true) {
            log::warn!("audit forwarding is off: {e}");
            return None;
        }
        Some(Forwarder { kind, socket_path, socket: sock, hostname: hostname(), warned: AtomicBool::new(false) })
    }

    /// Sends one record (with its hash); never blocks, never fails the caller.
    pub fn send(&self, record: &Record, hash: &str) {
        let message = match self.kind {
            ForwardKind::Syslog => syslog_message(record, hash, &self.hostname, std::process::id()),
            ForwardKind::Journald => journald_message(record, hash),
            ForwardKind::None => return,
        };
        if let Err(e) = self.socket.send_to(message.as_bytes(), &self.socket_path) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "audit records are not reaching {} ({e}); they are still written locally and chained",
                    self.socket_path.display()
                );
            } else {
                log::debug!("audit forwarding failed: {e}");
            }
        }
    }
}

/// Severity of a record: refusals are warnings, uses and helpdesk actions notices, the rest info.
fn severity(event: Event) -> u8 {
    match event {
        Event::Refusal | Event::Recovery => 4,
        Event::Use | Event::Helpdesk => 5,
        Event::Intent | Event::Notice | Event::Seal => 6,
    }
}

/// The record's fields as (name, value) pairs, in a fixed order.
fn fields<'a>(record: &'a Record, hash: &'a str) -> Vec<(&'static str, std::borrow::Cow<'a, str>)> {
    use std::borrow::Cow;
    let mut f: Vec<(&'static str, Cow<'a, str>)> = vec![
        ("seq", Cow::Owned(record.seq.to_string())),
        ("hash", Cow::Borrowed(hash)),
        ("prev", Cow::Borrowed(&record.prev)),
        ("event", Cow::Borrowed(record.event.as_str())),
    ];
    if let Some(uid) = record.uid {
        f.push(("uid", Cow::Owned(uid.to_string())));
    }
    let optional: [(&'static str, &'a Option<String>); 12] = [
        ("account", &record.account),
        ("client", &record.client),
        ("carrier", &record.carrier),
        ("serial", &record.serial),
        ("model", &record.model),
        ("cert", &record.cert),
        ("op", &record.op),
        ("data_sm3", &record.data_sm3),
        ("result", &record.result),
        ("reason", &record.reason),
        ("policy", &record.policy),
        ("holder", &record.holder),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            f.push((name, Cow::Borrowed(v.as_str())));
        }
    }
    if let Some(intent) = record.intent {
        f.push(("intent", Cow::Owned(intent.to_string())));
    }
    f
}

/// One line a person reads in the system log.
pub fn summary(record: &Record) -> String {
    let who = record.account.as_deref().map(str::to_string).or(record.uid.map(|u| format!("uid {u}")));
    let mut text = record.event.as_str().to_string();
    if let Some(op) = &record.op {
        text.push_str(&format!(" {op}"));
    }
    if let Some(who) = who {
        text.push_str(&format!(" by {who}"));
    }
    if let Some(carrier) = &record.carrier {
        text.push_str(&format!(" on {carrier}"));
    }
    if let Some(result) = &record.result {
        text.push_str(&format!(": {result}"));
    }
    if let Some(reason) = &record.reason {
        text.push_str(&format!(" ({reason})"));
    }
    text
}

/// The RFC 5424 message for a record.
pub fn syslog_message(record: &Record, hash: &str, hostname: &str, pid: u32) -> String {
    let pri = u16::from(FACILITY_AUTHPRIV) * 8 + u16::from(severity(record.event));
    let mut sd = format!("[{SD_ID}");
    for (name, value) in fields(record, hash) {
        sd.push_str(&format!(" {name}=\"{}\"", sd_escape(&value)));
    }
    sd.push(']');
    let timestamp = if record.time.is_empty() { "-" } else { record.time.as_str() };
    let host = header_token(hostname, 255);
    format!(
        "<{pri}>1 {timestamp} {host} ukey {pid} {} {sd} \u{feff}{}",
        record.event.as_str(),
        summary(record).replace(['\n', '\r'], " ")
    )
}

/// The journald native message for a record.
pub fn journald_message(record: &Record, hash: &str) -> String {
    let mut text = String::new();
    let mut put = |key: &str, value: &str| {
        text.push_str(key);
        text.push('=');
        text.extend(value.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }));
        text.push('\n');
    };
    put("MESSAGE", &summary(record));
    put("PRIORITY", &severity(record.event).to_string());
    put("SYSLOG_FACILITY", &FACILITY_AUTHPRIV.to_string());
    put("SYSLOG_IDENTIFIER", "ukey");
    for (name, value) in fields(record, hash) {
        put(&format!("UKEY_{}", name.to_ascii_uppercase()), &value);
    }
    text
}

/// RFC 5424 §6.3.3: `"`, `\` and `]` are escaped with a backslash inside PARAM-VALUE.
fn sd_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, `-` if empty.
fn header_token(text: &str, max: usize) -> String {
    let t: String = text.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if t.is_empty() { "-".into() } else { t }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_follow_rfc5424_and_escape_values() {
        let mut r = Record::new(Event::Refusal);
        r.seq = 7;
        r.prev = "0".repeat(64);
        r.time = "2024-01-01T00:00:00.000Z".into();
        r.account = Some("bob".into());
        r.reason = Some("key \"x\" [y]\\z".into());
        let m = syslog_message(&r, &"a".repeat(64), "host name", 42);
        assert!(m.starts_with("<84>1 2024-01-01T00:00:00.000Z hostname ukey 42 refusal [ukey@32473 seq=\"7\""), "{m}");
        assert!(m.contains(r#"reason="key \"x\" [y\]\\z""#), "{m}");
        assert!(m.contains("\u{feff}refusal by bob"), "{m}");
        let j = journald_message(&r, &"a".repeat(64));
        assert!(j.contains("UKEY_ACCOUNT=bob\n") && j.contains("PRIORITY=4\n"), "{j}");
    }
}
