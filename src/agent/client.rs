//! A small blocking client of the agent's Unix socket, for the `ukey` CLI ("CLI through the
//! agent": when an agent runs, commands go through it so policy and audit apply) and for local
//! programs written in Rust.
//!
//! Newline-delimited JSON-RPC; `hello` is sent on connect; event notifications that arrive
//! between answers are kept for [`AgentClient::next_notification`].

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::agent::instance;
use crate::agent::rpc::PROTOCOL_VERSION;

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No agent listens at the socket.
    #[error("no ukey agent is running (no answer at {0}); start one with `ukey agent`")]
    NotRunning(PathBuf),
    /// The socket failed mid-conversation.
    #[error("talking to the ukey agent failed: {0}")]
    Io(#[from] std::io::Error),
    /// The agent answered with an error.
    #[error("{message}")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// `error.data.kind`.
        kind: String,
        /// The agent's message.
        message: String,
        /// The whole `error.data`.
        data: Value,
    },
    /// The agent's answer was not JSON-RPC.
    #[error("the ukey agent sent an answer that is not JSON-RPC: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The error's kind (`WrongPin`, `NotFound`, ... for agent errors; `NotRunning`, `Io`,
    /// `Protocol` otherwise).
    pub fn kind(&self) -> &str {
        match self {
            ClientError::NotRunning(_) => "NotRunning",
            ClientError::Io(_) => "Io",
            ClientError::Rpc { kind, .. } => kind,
            ClientError::Protocol(_) => "Protocol",
        }
    }
}

impl From<ClientError> for ukey_api::Error {
    /// The contract error an agent error stands for, so callers (the CLI) handle an operation
    /// done through the agent exactly like one done directly: same messages, same exit codes.
    fn from(e: ClientError) -> Self {
        use ukey_api::{Error, PinRole};
        let (kind, message, data) = match e {
            ClientError::NotRunning(path) => {
                return Error::NotFound(format!(
                    "no ukey agent is running (no answer at {}); start one with `ukey agent`",
                    path.display()
                ));
            }
            ClientError::Io(err) => return Error::io("talking to the ukey agent", err),
            ClientError::Protocol(m) => return Error::Device(format!("the ukey agent answered strangely: {m}")),
            ClientError::Rpc { kind, message, data, .. } => (kind, message, data),
        };
        let role = match data.get("role").and_then(Value::as_str) {
            Some("so") => PinRole::So,
            _ => PinRole::User,
        };
        match kind.as_str() {
            "WrongPin" => Error::WrongPin {
                role,
                retries_left: data.get("retries_left").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
                detail: None,
            },
            "PinLocked" => Error::PinLocked { role },
            "PinMustChange" => Error::PinMustChange { role },
            "PinRejected" => Error::PinRejected(message),
            "TokenRemoved" => Error::TokenRemoved,
            "NotSupported" => Error::NotSupported(message),
            "NotFound" => Error::NotFound(message),
            "Busy" => Error::Busy(message),
            "Cancelled" => Error::Cancelled,
            "Timeout" => Error::Timeout(message),
            "InvalidInput" | "InvalidParams" => Error::InvalidInput(message),
            "PolicyDenied" => Error::Refused(message),
            "PermissionDenied" | "Forbidden" => Error::PermissionDenied(message),
            "Crypto" => Error::Crypto(message),
            _ => Error::Device(message),
        }
    }
}

/// A connection to the agent.
pub struct AgentClient {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
    notifications: VecDeque<Value>,
    /// What `hello` answered.
    pub hello: Value,
}

impl AgentClient {
    /// The socket of this user's agent (`$XDG_RUNTIME_DIR/ukey/agent.sock`, or under
    /// `runtime_dir`).
    pub fn default_socket(runtime_dir: Option<&Path>) -> Option<PathBuf> {
        instance::runtime_dir(runtime_dir).ok().map(|d| instance::socket_path(&d))
    }

    /// Connects to the running agent, if there is one: `Ok(None)` when none listens (no
    /// socket, or a stale one nobody accepts on).
    pub fn connect_if_running(runtime_dir: Option<&Path>) -> Result<Option<Self>, ClientError> {
        let Some(path) = Self::default_socket(runtime_dir) else { return Ok(None) };
        match Self::connect(&path) {
            Ok(c) => Ok(Some(c)),
            Err(ClientError::NotRunning(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Connects to the agent at `path` and says hello.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
                return Err(ClientError::NotRunning(path.to_path_buf()));
            }
            Err(e) => return Err(ClientError::Io(e)),
        };
        let reader = BufReader::new(stream.try_clone()?);
        let mut client =
            AgentClient { writer: stream, reader, next_id: 1, notifications: VecDeque::new(), hello: Value::Null };
        client.hello = client.call("hello", json!({ "versions": [PROTOCOL_VERSION], "client": "ukey-cli" }))?;
        Ok(client)
    }

    /// Limits how long one answer may take (PIN dialogs included); `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.writer.set_read_timeout(timeout)?;
        Ok(())
    }

    /// Calls a method and waits for its answer.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.call_with_secrets(method, params, &[])
    }

    /// Calls a method with secret string parameters (PINs, secret data): they are written
    /// straight into a zeroizing request buffer with room reserved up front, never into a
    /// `serde_json::Value` or a buffer that could be reallocated and left behind.
    pub fn call_with_secrets(
        &mut self,
        method: &str,
        params: Value,
        secrets: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let text = request_text(id, method, &params, secrets)?;
        if let Err(e) = self.writer.write_all(text.as_bytes()) {
            // The agent may have refused the connection (wrong uid) and closed it before our
            // request arrived; its refusal is still waiting to be read.
            return match self.read_message() {
                Ok(message) if message.get("error").is_some() => answer(message),
                _ => Err(ClientError::Io(e)),
            };
        }
        loop {
            let message = self.read_message()?;
            if message.get("id").and_then(Value::as_u64) == Some(id) {
                return answer(message);
            }
            if message.get("id").is_some_and(Value::is_null)
                && let Some(err) = message.get("error")
            {
                // Framing errors (and a refusal at connect) come with a null id.
                return answer(json!({ "error": err }));
            }
            if message.get("method").is_some() {
                self.notifications.push_back(message);
            }
        }
    }

    /// The next event notification (waiting for one if none is queued).
    pub fn next_notification(&mut self) -> Result<Value, ClientError> {
        if let Some(n) = self.notifications.pop_front() {
            return Ok(n);
        }
        loop {
            let message = self.read_message()?;
            if message.get("method").is_some() {
                return Ok(message);
            }
        }
    }

    fn read_message(&mut self) -> Result<Value, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the agent closed the connection",
            )));
        }
        serde_json::from_str(&line).map_err(|e| ClientError::Protocol(e.to_string()))
    }
}

/// The request line, with `secrets` spliced into the params object.
fn request_text(
    id: u64,
    method: &str,
    params: &Value,
    secrets: &[(&str, &str)],
) -> Result<Zeroizing<String>, ClientError> {
    let params = serde_json::to_string(params).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let method = serde_json::to_string(method).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let room: usize = secrets.iter().map(|(n, v)| n.len() + 6 * v.len() + 8).sum();
    let mut text = Zeroizing::new(String::with_capacity(params.len() + method.len() + room + 64));
    text.push_str(&format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":{method},\"params\":"));
    let body = params.trim_end();
    match body.strip_suffix('}') {
        Some(open) if !secrets.is_empty() => {
            text.push_str(open);
            let mut first = open.trim_end() == "{";
            for (name, value) in secrets {
                if !first {
                    text.push(',');
                }
                first = false;
                text.push('"');
                text.push_str(name);
                text.push_str("\":\"");
                push_json_escaped(&mut text, value);
                text.push('"');
            }
            text.push('}');
        }
        _ => text.push_str(body),
    }
    text.push_str("}\n");
    Ok(text)
}

/// Appends `value` JSON-escaped (without quotes); `out` has room reserved, so it never reallocates.
fn push_json_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

fn answer(message: Value) -> Result<Value, ClientError> {
    if let Some(err) = message.get("error") {
        return Err(ClientError::Rpc {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            kind: err.pointer("/data/kind").and_then(Value::as_str).unwrap_or("Unknown").to_string(),
            message: err.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
            data: err.get("data").cloned().unwrap_or(Value::Null),
        });
    }
    message.get("result").cloned().ok_or_else(|| ClientError::Protocol("answer without result".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_spliced_into_valid_json() {
        let t = request_text(7, "carrier.sign", &json!({ "token": "soft:1" }), &[("pin", "a\"b\\c"), ("new_pin", "x")])
            .unwrap();
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["params"]["pin"], "a\"b\\c");
        assert_eq!(v["params"]["new_pin"], "x");
        assert_eq!(v["params"]["token"], "soft:1");
        assert_eq!(v["id"], 7);
        let t = request_text(1, "m", &json!({}), &[("pin", "1234")]).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&t).unwrap()["params"]["pin"], "1234");
        let t = request_text(1, "m", &json!({}), &[]).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&t).unwrap()["params"], json!({}));
    }
}
