//! One connection to the agent's Unix socket: newline-delimited JSON-RPC 2.0, blocking, with
//! timeouts on every read and write.
//!
//! The module lives inside arbitrary programs, so it has no async runtime and spawns no threads:
//! a call writes one request line and reads lines until its answer arrives. Event notifications
//! read on the way are queued for [`Link::next_notification`]. A PIN the program passed to
//! `C_Login` is spliced into the request text inside a zeroizing buffer with its room reserved up
//! front; it never passes through a `serde_json::Value` or a buffer that could be reallocated.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The agent protocol version this module speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest answer line accepted (the agent's own message limit is 4 MiB).
const MAX_LINE: usize = 8 * 1024 * 1024;

/// How a call failed.
#[derive(Debug)]
pub enum LinkError {
    /// Nobody listens at the socket (no agent runs for this user).
    NotRunning(PathBuf),
    /// The socket failed or timed out mid-conversation.
    Io(std::io::Error),
    /// The agent answered with a JSON-RPC error.
    Rpc {
        /// `error.data.kind`: a stable name such as `WrongPin`, `Cancelled`, `PolicyDenied`.
        kind: String,
        /// The agent's message, for the debug log.
        message: String,
    },
    /// The answer was not JSON-RPC.
    Protocol(String),
    /// The connection a login lived on is gone (the agent restarted, or the link broke), so the
    /// agent no longer knows the login; nothing was sent.
    LoginLost,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::NotRunning(p) => write!(f, "no ukey agent is running (nothing listens at {})", p.display()),
            LinkError::Io(e) => write!(f, "talking to the ukey agent failed: {e}"),
            LinkError::Rpc { kind, message } => write!(f, "the ukey agent answered {kind}: {message}"),
            LinkError::Protocol(m) => write!(f, "the ukey agent's answer is not understood: {m}"),
            LinkError::LoginLost => f.write_str("the login ended with the agent connection it was made on"),
        }
    }
}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        LinkError::Io(e)
    }
}

/// A connection that has said `hello`.
pub struct Link {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
    notifications: VecDeque<Value>,
    broken: bool,
}

impl Link {
    /// Connects to `path` and says hello, waiting at most `timeout` for each step.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, LinkError> {
        let stream = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return Err(LinkError::NotRunning(path.to_path_buf()));
            }
            Err(e) => return Err(LinkError::Io(e)),
        };
        stream.set_write_timeout(Some(timeout))?;
        let reader = BufReader::new(stream.try_clone()?);
        let mut link = Link { writer: stream, reader, next_id: 1, notifications: VecDeque::new(), broken: false };
        link.call(
            "hello",
            json!({ "versions": [PROTOCOL_VERSION], "client": concat!("libukey_pkcs11 ", env!("CARGO_PKG_VERSION")) }),
            None,
            timeout,
        )?;
        Ok(link)
    }

    /// False once a call failed in a way that leaves the conversation out of step (a timeout, a
    /// broken socket); such a link must be dropped, never reused.
    pub fn usable(&self) -> bool {
        !self.broken
    }

    /// Calls `method` and waits at most `timeout` for its answer. `secret` is a `(name, value)`
    /// parameter (a PIN) spliced into the request in a zeroizing buffer.
    pub fn call(
        &mut self,
        method: &str,
        params: Value,
        secret: Option<(&str, &str)>,
        timeout: Duration,
    ) -> Result<Value, LinkError> {
        let id = self.next_id;
        self.next_id += 1;
        let text = request_text(id, method, &params, secret).map_err(LinkError::Protocol)?;
        self.writer.set_read_timeout(Some(timeout))?;
        if let Err(e) = self.writer.write_all(text.as_bytes()) {
            self.broken = true;
            // The agent may have refused us (another user's socket) and closed the connection
            // before reading; its refusal is still waiting to be read.
            return match self.read_message() {
                Ok(message) if message.get("error").is_some() => answer(message),
                _ => Err(LinkError::Io(e)),
            };
        }
        loop {
            let message = match self.read_message() {
                Ok(m) => m,
                Err(e) => {
                    self.broken = true;
                    return Err(e);
                }
            };
            if message.get("id").and_then(Value::as_u64) == Some(id) {
                return answer(message);
            }
            if message.get("id").is_some_and(Value::is_null)
                && let Some(err) = message.get("error")
            {
                // A refusal at connect or a framing error comes with a null id.
                self.broken = true;
                return answer(json!({ "error": err }));
            }
            if message.get("method").is_some() {
                self.notifications.push_back(message);
            }
        }
    }

    /// The next notification, waiting at most `timeout`; `Ok(None)` when none arrived in time
    /// (the link stays usable: a timeout between lines loses nothing).
    pub fn next_notification(&mut self, timeout: Duration) -> Result<Option<Value>, LinkError> {
        if let Some(n) = self.notifications.pop_front() {
            return Ok(Some(n));
        }
        self.writer.set_read_timeout(Some(timeout))?;
        loop {
            if self.reader.buffer().is_empty() {
                // Wait for the first byte without consuming anything, so a timeout cannot cut a
                // line in half.
                match self.reader.fill_buf() {
                    Ok([]) => {
                        self.broken = true;
                        return Err(LinkError::Io(std::io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "the agent closed the connection",
                        )));
                    }
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
                    Err(e) => {
                        self.broken = true;
                        return Err(LinkError::Io(e));
                    }
                }
            }
            let message = match self.read_message() {
                Ok(m) => m,
                Err(e) => {
                    self.broken = true;
                    return Err(e);
                }
            };
            if message.get("method").is_some() {
                return Ok(Some(message));
            }
        }
    }

    fn read_message(&mut self) -> Result<Value, LinkError> {
        let mut line = Vec::new();
        let read = (&mut self.reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
        if read == 0 {
            return Err(LinkError::Io(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "the agent closed the connection",
            )));
        }
        if line.len() > MAX_LINE {
            return Err(LinkError::Protocol(format!("an answer longer than {MAX_LINE} bytes")));
        }
        serde_json::from_slice(&line).map_err(|e| LinkError::Protocol(e.to_string()))
    }
}

/// The request line, with `secret` spliced into the params object.
fn request_text(
    id: u64,
    method: &str,
    params: &Value,
    secret: Option<(&str, &str)>,
) -> Result<Zeroizing<String>, String> {
    let params = serde_json::to_string(params).map_err(|e| e.to_string())?;
    let method = serde_json::to_string(method).map_err(|e| e.to_string())?;
    let room = secret.map(|(n, v)| n.len() + 6 * v.len() + 8).unwrap_or(0);
    let mut text = Zeroizing::new(String::with_capacity(params.len() + method.len() + room + 64));
    text.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    text.push_str(&id.to_string());
    text.push_str(",\"method\":");
    text.push_str(&method);
    text.push_str(",\"params\":");
    let body = params.trim_end();
    match (body.strip_suffix('}'), secret) {
        (Some(open), Some((name, value))) => {
            text.push_str(open);
            if open.trim_end() != "{" {
                text.push(',');
            }
            text.push('"');
            text.push_str(name);
            text.push_str("\":\"");
            push_json_escaped(&mut text, value);
            text.push_str("\"}");
        }
        _ => text.push_str(body),
    }
    text.push_str("}\n");
    Ok(text)
}

/// Appends `value` JSON-escaped (without quotes) into room reserved beforehand, so the buffer
/// never reallocates and leaves a copy behind.
fn push_json_escaped(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let n = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[n >> 4]));
                out.push(char::from(HEX[n & 15]));
            }
            c => out.push(c),
        }
    }
}

fn answer(message: Value) -> Result<Value, LinkError> {
    if let Some(err) = message.get("error") {
        return Err(LinkError::Rpc {
            kind: err.pointer("/data/kind").and_then(Value::as_str).unwrap_or("Unknown").to_string(),
            message: err.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
        });
    }
    message.get("result").cloned().ok_or_else(|| LinkError::Protocol("an answer without a result".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_spliced_into_valid_json() {
        let t = request_text(7, "carrier.login", &json!({ "token": "soft:1" }), Some(("pin", "a\"b\\c\u{1}"))).unwrap();
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["params"]["pin"], "a\"b\\c\u{1}");
        assert_eq!(v["params"]["token"], "soft:1");
        assert_eq!(v["id"], 7);
        let t = request_text(1, "m", &json!({}), Some(("pin", "1234"))).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&t).unwrap()["params"], json!({ "pin": "1234" }));
        let t = request_text(1, "m", &json!({}), None).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&t).unwrap()["params"], json!({}));
    }
}
