//! The agent's protocol and lifecycle over its real sockets: handshake, methods, errors,
//! batches, the schema, a single instance per user, stale sockets, clean shutdown.

mod agent_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;

use agent_support::{DEADLINE, TestAgent, kind};
use serde_json::{Value, json};

/// Sends raw lines on the Unix socket and reads `answers` lines back.
fn unix_raw(agent: &TestAgent, lines: &[&str], answers: usize) -> Vec<Value> {
    let mut s = UnixStream::connect(&agent.socket).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    for l in lines {
        s.write_all(l.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
    }
    let mut r = BufReader::new(s);
    (0..answers)
        .map(|_| {
            let mut line = String::new();
            r.read_line(&mut line).expect("answer");
            serde_json::from_str(&line).expect("JSON answer")
        })
        .collect()
}

#[test]
fn socket_and_directory_are_private_and_hello_lists_methods() {
    let agent = TestAgent::start(&[]);
    let dir_mode = std::fs::metadata(agent.socket.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let meta = std::fs::metadata(&agent.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let mut c = agent.unix();
    assert_eq!(c.hello["protocol"], 1);
    assert_eq!(c.hello["transport"], "unix");
    let methods: Vec<&str> = c.hello["methods"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for m in ["tokens.list", "certs.list", "sign", "auth", "events.subscribe", "pin.change", "keys.list"] {
        assert!(methods.contains(&m), "{m} missing from {methods:?}");
    }
    let tokens = c.call("tokens.list", json!({})).unwrap();
    assert!(tokens["tokens"].is_array());
    let status = c.call("agent.status", json!({})).unwrap();
    assert_eq!(status["port"], agent.port);
    assert_eq!(status["socket"], agent.socket.to_str().unwrap());
}

#[test]
fn handshake_comes_first_and_versions_must_match() {
    let agent = TestAgent::start(&[]);
    let answers = unix_raw(
        &agent,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"tokens.list"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"hello","params":{"versions":[7,8]}}"#,
        ],
        2,
    );
    let by_id = |id: u64| answers.iter().find(|a| a["id"] == id).cloned().unwrap();
    assert_eq!(kind(&by_id(1)), "HandshakeRequired");
    assert_eq!(kind(&by_id(2)), "VersionMismatch");
    assert!(by_id(2)["error"]["message"].as_str().unwrap().contains("protocol 1"));
}

#[test]
fn errors_batches_and_notifications_follow_json_rpc() {
    let agent = TestAgent::start(&[]);
    let answers = unix_raw(
        &agent,
        &[
            r#"{"jsonrpc":"2.0","id":1,"method":"hello","params":{"versions":[1]}}"#,
            r#"{"jsonrpc":"2.0","method":"tokens.list"}"#,
            r#"{"jsonrpc":"2.0","id":"x","method":"no.such.method"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"certs.list","params":{"bogus":1}}"#,
            r#"[{"jsonrpc":"2.0","id":4,"method":"tokens.list"},{"jsonrpc":"2.0","method":"tokens.list"},{"jsonrpc":"2.0","id":5,"method":"agent.status"}]"#,
        ],
        4,
    );
    let by_id = |id: Value| answers.iter().find(|a| a["id"] == id).cloned();
    assert!(by_id(json!(1)).unwrap()["result"].is_object());
    let missing = by_id(json!("x")).unwrap();
    assert_eq!(missing["error"]["code"], -32601);
    let bad_params = by_id(json!(3)).unwrap();
    assert_eq!(bad_params["error"]["code"], -32602);
    let batch = answers.iter().find(|a| a.is_array()).expect("batch answer").as_array().unwrap().clone();
    assert_eq!(batch.len(), 2, "the notification in the batch gets no answer: {batch:?}");
    assert!(batch.iter().all(|a| a["result"].is_object()));
    assert_eq!(answers.len(), 4, "the notification got no answer");
}

/// Every method the agent answers is documented in docs/agent-protocol.json, and every
/// documented method is answered (not "method not found").
#[test]
fn every_method_is_in_the_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/agent-protocol.json")).unwrap(),
    )
    .unwrap();
    let documented: BTreeSet<String> = schema["methods"]
        .as_array()
        .expect("an OpenRPC methods array")
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    let agent = TestAgent::start(&[]);
    let c = agent.unix();
    let answered: BTreeSet<String> =
        c.hello["methods"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
    assert_eq!(answered, documented, "methods answered vs documented differ");
    let mut c = agent.unix();
    for m in &documented {
        if m == "agent.shutdown" {
            continue;
        }
        // Parameters are deliberately wrong: only "does the method exist" is asked here.
        if let Err(e) = c.call(m, json!({ "__probe": true })) {
            assert_ne!(e.kind(), "MethodNotFound", "{m} is documented but not answered");
        }
    }
    // Examples in the schema use only documented methods.
    for m in schema["methods"].as_array().unwrap() {
        for ex in m["examples"].as_array().into_iter().flatten() {
            assert!(ex["params"].is_array() || ex["params"].is_object(), "example of {} lacks params", m["name"]);
        }
    }
}

#[test]
fn a_second_agent_says_where_the_first_is() {
    let agent = TestAgent::start(&[]);
    let out = agent.ukey().args(["agent", "--port", "0"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running") && err.contains(agent.socket.to_str().unwrap()), "{err}");
    let pid = agent.child.as_ref().unwrap().id().to_string();
    assert!(err.contains(&pid), "{err}");
}

#[test]
fn a_stale_socket_is_replaced_and_shutdown_is_clean() {
    let mut agent = TestAgent::start(&[]);
    agent.crash();
    assert!(agent.socket.exists(), "a crashed agent leaves its socket behind");
    agent.restart();
    let mut c = agent.unix();
    assert!(c.call("tokens.list", json!({})).is_ok());
    drop(c);
    assert!(agent.terminate(), "SIGTERM ends the agent with success");
    assert!(!agent.socket.exists(), "the socket is removed at shutdown");
    assert!(!agent.socket.with_file_name("agent.json").exists());
    agent.wait_log("ukey agent stopping");
}

#[test]
fn status_and_stop_commands() {
    let mut agent = TestAgent::start(&[]);
    let out = agent.ukey().args(["agent", "status"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(agent.socket.to_str().unwrap()) && text.contains(&agent.port.to_string()), "{text}");
    let out = agent.ukey().args(["agent", "stop"]).output().unwrap();
    assert!(out.status.success());
    assert!(agent.terminate() || !agent.socket.exists());
    let out = agent.ukey().args(["agent", "status"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ukey agent is running"));
}

#[test]
fn detach_starts_in_the_background() {
    let agent = TestAgent::start(&["--no-websocket"]);
    // A second, detached agent in fresh directories.
    let other = tempfile::tempdir().unwrap();
    let mut cmd = agent.ukey();
    cmd.env("XDG_RUNTIME_DIR", other.path().join("run")).env("XDG_DATA_HOME", other.path().join("data"));
    let out = cmd.args(["agent", "--detach", "--port", "0"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("started in the background"), "{text}");
    let sock = other.path().join("run/ukey/agent.sock");
    let mut c = ukey::agent::client::AgentClient::connect(&sock).unwrap();
    let st = c.call("agent.status", json!({})).unwrap();
    assert!(st["pid"].as_u64().is_some());
    c.call("agent.shutdown", json!({})).unwrap();
    let until = std::time::Instant::now() + DEADLINE;
    while sock.exists() {
        assert!(std::time::Instant::now() < until, "detached agent did not stop");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
