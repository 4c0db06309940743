//! Shared harness of the agent tests: a real `ukey agent` process in its own temporary runtime,
//! data and config directories, on a free port, with the scripted pinentry
//! (`ukey-pinentry-script`, the real Assuan protocol) answering from a file the test writes; its
//! stderr is captured so tests can read the agent's log. Clients are real: the library's Unix
//! socket client, a tungstenite WebSocket client, and raw TCP for malformed requests.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

use ukey::agent::client::AgentClient;

/// Longest any test waits for one thing.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The PIN used throughout; it must never appear in the agent's log or error messages.
pub const SENTINEL_PIN: &str = "S3ntinel-7391";

/// Path of the built `ukey` binary.
pub fn ukey_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ukey"))
}

/// Path of the scripted pinentry.
pub fn pinentry_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ukey-pinentry-script"))
}

/// One running agent and its directories.
pub struct TestAgent {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub port: u16,
    pub socket: PathBuf,
    pub script: PathBuf,
    pub dialogs: PathBuf,
    log: Arc<Mutex<String>>,
    extra: Vec<String>,
    /// Extra environment for the agent and every `ukey` command of the test (e.g. the custody
    /// tests' `UKEY_SYSTEM_DIR`).
    pub extra_env: Vec<(String, PathBuf)>,
}

impl TestAgent {
    /// Starts an agent with the default test flags plus `extra`.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, extra)
    }

    /// Starts an agent in an existing directory layout (for restarts).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        Self::start_in_env(dir, extra, &[])
    }

    /// Starts an agent in an existing directory layout with extra environment variables.
    pub fn start_in_env(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &Path)]) -> Self {
        let script = dir.path().join("pinentry-script");
        let dialogs = dir.path().join("pinentry-log.jsonl");
        if !script.exists() {
            std::fs::write(&script, "").expect("script file");
        }
        let mut agent = TestAgent {
            port: 0,
            socket: dir.path().join("run/ukey/agent.sock"),
            dir,
            child: None,
            script,
            dialogs,
            log: Arc::new(Mutex::new(String::new())),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            extra_env: env.iter().map(|(k, v)| (k.to_string(), v.to_path_buf())).collect(),
        };
        agent.spawn();
        agent
    }

    /// The environment every ukey process of this test gets.
    pub fn envs(&self) -> Vec<(String, PathBuf)> {
        let d = self.dir.path();
        let mut envs: Vec<(String, PathBuf)> = vec![
            ("XDG_RUNTIME_DIR".into(), d.join("run")),
            ("XDG_DATA_HOME".into(), d.join("data")),
            ("XDG_CONFIG_HOME".into(), d.join("config")),
            ("XDG_STATE_HOME".into(), d.join("state")),
            ("UKEY_SOFT_DIR".into(), d.join("soft")),
            ("HOME".into(), d.to_path_buf()),
            // Only the soft driver: the agent under test must not pick up the machine's PKCS#11
            // modules (SoftHSM is registered with p11-kit here) or PC/SC readers of other tests.
            ("UKEY_DRIVERS".into(), PathBuf::from("soft")),
        ];
        envs.extend(self.extra_env.iter().cloned());
        envs
    }

    /// A `ukey` command with this agent's environment.
    pub fn ukey(&self) -> Command {
        let mut cmd = Command::new(ukey_bin());
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in self.envs() {
            cmd.env(k, v);
        }
        cmd
    }

    fn spawn(&mut self) {
        let mut cmd = self.ukey();
        cmd.args(["agent", "--port", "0"]);
        // Tests read the agent's debug log; a caller that names a verbosity itself (a benchmark
        // measuring the agent as it normally runs) gets that one instead.
        if !self.extra.iter().any(|a| a.starts_with("-v") && a[1..].chars().all(|c| c == 'v')) {
            cmd.arg("-vvv");
        }
        if !self.extra.iter().any(|a| a == "--pinentry") {
            cmd.arg("--pinentry")
                .arg(pinentry_bin())
                .arg("--pinentry-arg=--script")
                .arg(format!("--pinentry-arg={}", self.script.display()))
                .arg("--pinentry-arg=--log")
                .arg(format!("--pinentry-arg={}", self.dialogs.display()));
        }
        cmd.args(&self.extra).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start ukey agent");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(DEADLINE) {
            Ok(l) => l,
            Err(_) => panic!("the agent did not report it listens within {DEADLINE:?}; log:\n{}", self.log()),
        };
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.trim_end_matches('/').parse::<u16>().ok())
            .unwrap_or(0);
        self.port = port;
        self.child = Some(child);
    }

    /// Everything the agent logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        let until = Instant::now() + DEADLINE;
        while !self.log().contains(needle) {
            assert!(Instant::now() < until, "the agent never logged {needle:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Replaces the pinentry script (one answer per line).
    pub fn script(&self, lines: &[&str]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&self.script, text).expect("write pinentry script");
    }

    /// The dialogs shown so far.
    pub fn dialogs(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.dialogs)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// A Unix-socket client (hello done).
    pub fn unix(&self) -> AgentClient {
        let c = AgentClient::connect(&self.socket).expect("connect to the agent's Unix socket");
        c.set_timeout(Some(DEADLINE)).expect("timeout");
        c
    }

    /// A WebSocket client with this Origin (or none); hello is not sent.
    pub fn ws(&self, origin: Option<&str>) -> Result<Ws, tungstenite::Error> {
        ws_connect(self.port, "127.0.0.1", origin)
    }

    /// A WebSocket client that has said hello.
    pub fn ws_hello(&self, origin: &str) -> Ws {
        let mut ws = self.ws(Some(origin)).expect("WebSocket upgrade");
        let hello = ws.call("hello", json!({ "versions": [1] }));
        assert!(hello.get("result").is_some(), "hello failed: {hello}");
        ws
    }

    /// Sends SIGTERM and waits for the agent to exit; returns its exit status success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let until = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > until {
                let _ = child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the agent without letting it clean up (a crash).
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the agent again in the same directories.
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A WebSocket JSON-RPC client.
pub struct Ws {
    pub socket: WebSocket<TcpStream>,
    next: u64,
    pub notifications: VecDeque<Value>,
}

/// Connects to `ws://HOST:PORT/rpc` with the given Origin.
pub fn ws_connect(port: u16, host: &str, origin: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(tungstenite::Error::Io)?;
    stream.set_read_timeout(Some(DEADLINE)).map_err(tungstenite::Error::Io)?;
    let mut request = format!("ws://{host}:{port}/rpc").into_client_request()?;
    if let Some(o) = origin {
        request.headers_mut().insert("Origin", o.parse().expect("header value"));
    }
    let (socket, _) = tungstenite::client(request, stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(f) => f,
        tungstenite::HandshakeError::Interrupted(_) => tungstenite::Error::ConnectionClosed,
    })?;
    Ok(Ws { socket, next: 1, notifications: VecDeque::new() })
}

impl Ws {
    /// Sends a request and returns the whole response object.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send_raw(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string());
        loop {
            let msg = self.read();
            if msg.get("id").and_then(Value::as_u64) == Some(id) {
                return msg;
            }
            if msg.get("method").is_some() {
                self.notifications.push_back(msg);
            } else if msg.get("id").is_some_and(Value::is_null) {
                return msg;
            }
        }
    }

    /// Sends text as one message.
    pub fn send_raw(&mut self, text: &str) {
        self.socket.send(Message::text(text.to_string())).expect("send");
    }

    /// Reads the next JSON message.
    pub fn read(&mut self) -> Value {
        loop {
            match self.socket.read().expect("read from the agent") {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON from the agent"),
                Message::Close(f) => panic!("the agent closed the WebSocket: {f:?}"),
                _ => continue,
            }
        }
    }

    /// The next notification, waiting for one.
    pub fn next_notification(&mut self) -> Value {
        if let Some(n) = self.notifications.pop_front() {
            return n;
        }
        loop {
            let msg = self.read();
            if msg.get("method").is_some() {
                return msg;
            }
        }
    }
}

/// The `error.data.kind` of a response, or "" for a success.
pub fn kind(response: &Value) -> String {
    response.pointer("/error/data/kind").and_then(Value::as_str).unwrap_or("").to_string()
}

/// Sends raw bytes to the port and returns what the agent answers (until it closes).
pub fn raw_http(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A valid upgrade request head with the given Host and Origin lines.
pub fn upgrade_request(host: &str, origin: Option<&str>) -> Vec<u8> {
    let mut r = format!(
        "GET /rpc HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(o) = origin {
        r.push_str(&format!("Origin: {o}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// The status code of a raw HTTP answer.
pub fn status_code(answer: &str) -> u16 {
    answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Makes a directory reachable by other users (for the other-user test's binary copy).
pub fn open_dir(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
