//! Slow and hostile clients cannot stall the agent: a request head that never ends, a WebSocket
//! that goes silent, and a page that floods requests but never reads the answers are each dropped
//! by the agent's own timeouts, while other clients are served meanwhile. The limits are set
//! short through the agent's configuration file (`[agent.limits]`).

mod agent_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use agent_support::{DEADLINE, TestAgent, upgrade_request};
use serde_json::json;

const PAGE: &str = "https://bank.example";

/// An agent whose handshake timeout is 1 s and idle (and send) timeout 2 s.
fn impatient_agent() -> TestAgent {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config/ukey");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("config.toml"), "[agent.limits]\nhandshake_timeout_secs = 1\nidle_timeout_secs = 2\n")
        .expect("write config");
    TestAgent::start_in(dir, &[])
}

/// True when the peer closed the connection (EOF or reset) before `DEADLINE`; whatever it sent
/// first is read and dropped.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    let until = Instant::now() + DEADLINE;
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

fn others_are_served(agent: &TestAgent) {
    let mut ws = agent.ws_hello(PAGE);
    assert!(ws.call("agent.status", json!({})).get("error").is_some(), "admin stays refused on the WebSocket");
    let mut unix = agent.unix();
    assert!(unix.call("tokens.list", json!({})).is_ok(), "the Unix socket is served");
}

#[test]
fn a_request_head_that_never_ends_is_dropped() {
    let agent = impatient_agent();
    let mut slow = TcpStream::connect(("127.0.0.1", agent.port)).expect("connect");
    slow.write_all(format!("GET /rpc HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", agent.port).as_bytes()).expect("write");
    others_are_served(&agent);
    let started = Instant::now();
    assert!(closed_by_peer(&mut slow), "the agent never dropped a request head that does not end");
    assert!(started.elapsed() < DEADLINE);
}

#[test]
fn a_silent_websocket_is_closed() {
    let agent = impatient_agent();
    let mut silent = TcpStream::connect(("127.0.0.1", agent.port)).expect("connect");
    silent.write_all(&upgrade_request(&format!("127.0.0.1:{}", agent.port), Some(PAGE))).expect("write");
    others_are_served(&agent);
    // It never answers the agent's pings.
    assert!(closed_by_peer(&mut silent), "the agent never closed a silent WebSocket");
}

/// A masked client text frame (RFC 6455; a zero mask leaves the payload as is).
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn a_page_that_never_reads_its_answers_is_dropped() {
    let agent = impatient_agent();
    let mut flood = TcpStream::connect(("127.0.0.1", agent.port)).expect("connect");
    flood.write_all(&upgrade_request(&format!("127.0.0.1:{}", agent.port), Some(PAGE))).expect("write");
    // Requests until the agent stops taking them (its answers fill the socket buffers, which this
    // client never reads) or a generous amount is sent.
    flood.set_write_timeout(Some(Duration::from_secs(3))).expect("write timeout");
    let hello = client_frame(br#"{"jsonrpc":"2.0","id":1,"method":"hello","params":{"versions":[1]}}"#);
    let batch: Vec<u8> = hello.iter().copied().cycle().take(hello.len() * 1000).collect();
    for _ in 0..200 {
        if flood.write_all(&batch).is_err() {
            break;
        }
    }
    others_are_served(&agent);
    agent.wait_log("the page does not read its answers");
    others_are_served(&agent);
    assert!(closed_by_peer(&mut flood), "the agent never dropped the page that does not read");
}
