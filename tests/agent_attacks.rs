//! Attacks on the agent over its real sockets; each must be refused.
//!
//! Missing, `null` and foreign Origins; DNS rebinding (`Host: evil.example:PORT`); a valid Origin
//! with a non-loopback Host; a Unix-socket client running as another user; oversized frames and
//! messages; malformed and batch-bomb JSON-RPC; an admin method on the WebSocket; a PIN supplied
//! by a page; an unpaired origin.

mod agent_support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;

use agent_support::{DEADLINE, TestAgent, kind, raw_http, status_code, upgrade_request};
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};

const PAGE: &str = "https://bank.example";

fn pair(agent: &TestAgent, origin: &str) {
    let out = agent.ukey().args(["origins", "pair", origin]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn upgrades_without_a_good_origin_are_refused() {
    let agent = TestAgent::start(&[]);
    let host = format!("127.0.0.1:{}", agent.port);
    for (origin, why) in [
        (None, "no Origin"),
        (Some("null"), "null"),
        (Some("http://evil.example"), "plain http, not loopback"),
        (Some("http://localhost:9999"), "http loopback that is not a development origin"),
        (Some("chrome-extension://abcdef"), "extension scheme"),
        (Some("https://bank.example/path"), "not an origin"),
    ] {
        let answer = raw_http(agent.port, &upgrade_request(&host, origin));
        assert_eq!(status_code(&answer), 403, "{why}: {answer}");
        assert!(!answer.contains("Access-Control-Allow-Origin"), "{why}: CORS header sent");
        if let Some(o) = origin.filter(|o| o.len() > 6) {
            let headers = answer.split("\r\n\r\n").next().unwrap_or("");
            assert!(!headers.contains(o), "{why}: the Origin was echoed in the headers: {headers}");
        }
    }
    // Two Origin headers cannot smuggle a good one past the check.
    let mut twice = upgrade_request(&host, Some(PAGE));
    twice.truncate(twice.len() - 2);
    twice.extend_from_slice(b"Origin: https://evil.example\r\n\r\n");
    assert_eq!(status_code(&raw_http(agent.port, &twice)), 403);
    // The library client sees a failed handshake too.
    assert!(agent.ws(None).is_err());
}

#[test]
fn rebinding_and_foreign_hosts_are_refused() {
    let agent = TestAgent::start(&[]);
    let port = agent.port;
    for host in [
        format!("evil.example:{port}"),
        format!("192.168.1.10:{port}"),
        format!("localhost.evil.example:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
    ] {
        // With a perfectly valid, even paired, Origin.
        let answer = raw_http(port, &upgrade_request(&host, Some(PAGE)));
        assert_eq!(status_code(&answer), 421, "Host {host}: {answer}");
        // Plain GETs of the demo page too.
        let answer = raw_http(port, format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        assert_eq!(status_code(&answer), 421, "GET with Host {host}: {answer}");
    }
    agent.wait_log("is not a loopback name");
    // The same request with a loopback Host is served.
    let answer = raw_http(port, format!("GET / HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n").as_bytes());
    assert_eq!(status_code(&answer), 200);
    assert!(answer.contains("X-Frame-Options: DENY"));
}

#[test]
fn an_unpaired_origin_can_only_say_hello() {
    let agent = TestAgent::start(&[]);
    let mut ws = agent.ws_hello("https://stranger.example");
    for m in ["tokens.list", "certs.list", "events.subscribe"] {
        let r = ws.call(m, json!({}));
        assert_eq!(kind(&r), "NotPaired", "{m}: {r}");
    }
    let r = ws.call("sign", json!({ "cert": "soft:x#01", "data": "aGk=" }));
    assert_eq!(kind(&r), "NotPaired");
    assert!(agent.dialogs().is_empty(), "no dialog for an unpaired origin's requests");
}

#[test]
fn admin_methods_are_never_served_on_the_websocket() {
    let agent = TestAgent::start(&[]);
    pair(&agent, PAGE);
    let mut ws = agent.ws_hello(PAGE);
    for m in [
        "pin.change",
        "pin.unblock",
        "token.init",
        "origins.list",
        "origins.pair",
        "origins.revoke",
        "keys.list",
        "agent.status",
        "agent.shutdown",
    ] {
        let r = ws.call(m, json!({ "token": "soft:x", "origin": "https://evil.example" }));
        assert_eq!(kind(&r), "Forbidden", "{m}: {r}");
    }
    // The agent is still running and the pairing list unchanged.
    let mut c = agent.unix();
    let list = c.call("origins.list", json!({})).unwrap();
    assert_eq!(list["origins"].as_array().unwrap().len(), 1);
    let hello = ws.call("hello", json!({ "versions": [1] }));
    let methods = hello["result"]["methods"].as_array().unwrap();
    assert!(!methods.iter().any(|m| m == "pin.change"), "hello lists no admin method to a page");
}

#[test]
fn a_pin_sent_by_a_page_is_refused() {
    let agent = TestAgent::start(&[]);
    pair(&agent, PAGE);
    let mut ws = agent.ws_hello(PAGE);
    for params in [
        json!({ "cert": "soft:x#01", "data": "aGk=", "pin": agent_support::SENTINEL_PIN }),
        json!({ "cert": "soft:x#01", "nonce": "0123456789abcdef0123", "PIN": agent_support::SENTINEL_PIN }),
        json!({ "token": "soft:x", "algorithm": "p256", "label": "k", "so_pin": agent_support::SENTINEL_PIN }),
    ] {
        let r = ws.call(if params.get("nonce").is_some() { "auth" } else { "sign" }, params);
        assert_eq!(kind(&r), "Forbidden", "{r}");
        assert!(!r.to_string().contains(agent_support::SENTINEL_PIN));
    }
    assert!(agent.dialogs().is_empty());
    assert!(!agent.log().contains(agent_support::SENTINEL_PIN), "the PIN reached the log");
}

#[test]
fn malformed_json_and_batch_bombs_are_refused() {
    let agent = TestAgent::start(&[]);
    pair(&agent, PAGE);
    let mut ws = agent.ws_hello(PAGE);
    ws.send_raw("{not json");
    assert_eq!(ws.read()["error"]["code"], -32700);
    ws.send_raw("[]");
    assert_eq!(ws.read()["error"]["code"], -32600);
    ws.send_raw(r#"{"jsonrpc":"2.0","id":1}"#);
    assert_eq!(ws.read()["error"]["code"], -32600);
    let one = r#"{"jsonrpc":"2.0","id":1,"method":"tokens.list"}"#;
    let bomb = format!("[{}]", vec![one; 10_000].join(","));
    ws.send_raw(&bomb);
    let r = ws.read();
    assert_eq!(r["error"]["data"]["kind"], "BatchTooLarge", "{r}");
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    ws.send_raw(&deep);
    let r = ws.read();
    assert!(
        r.get("error").is_some() || r.as_array().is_some_and(|a| a.iter().all(|x| x.get("error").is_some())),
        "{r}"
    );
    // Still serving.
    assert!(ws.call("tokens.list", json!({})).get("result").is_some());
    // Same over the Unix socket.
    let mut s = UnixStream::connect(&agent.socket).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(format!("{bomb}\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    assert!(line.contains("BatchTooLarge"), "{line}");
}

#[test]
fn oversized_frames_and_messages_close_the_connection() {
    let agent = TestAgent::start(&[]);
    pair(&agent, PAGE);
    let mut ws = agent.ws_hello(PAGE);
    // A 2 MiB single frame exceeds the 1 MiB frame limit.
    let big = "x".repeat(2 * 1024 * 1024);
    let _ = ws.socket.send(Message::text(big));
    let mut closed = false;
    for _ in 0..4 {
        match ws.socket.read() {
            Ok(Message::Close(f)) => {
                closed = true;
                if let Some(f) = f {
                    assert_eq!(u16::from(f.code), 1009, "close code says too big");
                }
                break;
            }
            Ok(_) => continue,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "the oversized frame did not close the connection");
    // A request head over the bound.
    let mut head = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Pad: ", agent.port).into_bytes();
    head.extend(vec![b'a'; 16 * 1024]);
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_code(&raw_http(agent.port, &head)), 431);
    // The agent still serves others.
    let mut ws = agent.ws_hello(PAGE);
    assert!(ws.call("tokens.list", json!({})).get("result").is_some());
    // A Unix-socket line over the 4 MiB message bound is refused and the connection closed.
    let mut s = UnixStream::connect(&agent.socket).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let long = vec![b' '; 5 * 1024 * 1024];
    let _ = s.write_all(&long);
    let mut line = String::new();
    let _ = BufReader::new(&s).read_line(&mut line);
    assert!(line.contains("MessageTooLarge"), "{line}");
}

#[test]
fn binary_frames_are_refused() {
    let agent = TestAgent::start(&[]);
    pair(&agent, PAGE);
    let mut ws = agent.ws_hello(PAGE);
    ws.socket.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    loop {
        match ws.socket.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1003);
                break;
            }
            Ok(Message::Close(None)) | Err(tungstenite::Error::ConnectionClosed) => break,
            Ok(_) => continue,
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

/// Creates the test user (idempotent, tolerant of parallel test binaries).
fn test_user() -> (u32, String) {
    let name = "ukeytest";
    let id = |n: &str| Command::new("id").args(["-u", n]).output().ok().filter(|o| o.status.success());
    if id(name).is_none() {
        let _ = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
            .status()
            .expect("useradd (package passwd) is needed to create the test user");
    }
    let out = id(name).expect("the test user could not be created");
    (String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(), name.to_string())
}

#[test]
fn a_client_running_as_another_user_is_refused() {
    assert!(
        rustix::process::getuid().is_root(),
        "this test needs root: it creates a second user and connects as that user (run the suite as root, as CI does)"
    );
    let (other_uid, other) = test_user();
    let agent = TestAgent::start(&[]);
    // A copy of ukey the other user can execute.
    let bin_dir = tempfile::tempdir().unwrap();
    agent_support::open_dir(bin_dir.path());
    let bin = bin_dir.path().join("ukey");
    std::fs::copy(agent_support::ukey_bin(), &bin).unwrap();
    let as_other = |runtime: &std::path::Path| {
        Command::new("setpriv")
            .args([&format!("--reuid={other}"), &format!("--regid={other}"), "--clear-groups", "--"])
            .arg(&bin)
            .args(["agent", "status"])
            .env_clear()
            .env("XDG_RUNTIME_DIR", runtime)
            .env("HOME", bin_dir.path())
            .env("PATH", "/usr/bin:/bin")
            .output()
            .expect("setpriv (util-linux) is needed")
    };
    let runtime = agent.dir.path().join("run");
    // 1. As installed: the 0700 directory and 0600 socket keep the other user out entirely.
    agent_support::open_dir(agent.dir.path());
    agent_support::open_dir(&runtime);
    let out = as_other(&runtime);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    // 2. Even with the directory and socket opened up by mistake, SO_PEERCRED refuses the peer.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(runtime.join("ukey"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&agent.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = as_other(&runtime);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to uid 0"), "{err}");
    agent.wait_log(&format!("refused a Unix-socket client running as uid {other_uid}"));
}
