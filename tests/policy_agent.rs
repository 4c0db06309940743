//! The custody policy and the audit log on the agent path, through a real `ukey agent` process and
//! its real sockets, with real soft tokens: a carrier bound to another account is refused over
//! the Unix socket and through the CLI (which goes through the running agent), with the holder
//! named; re-bound to this account it signs and the use is on record; an audit log that cannot
//! be written refuses the use (read-only directory) and withholds the result (full disk); the
//! agent SIGKILLed again and again while signing leaves a chain that verifies and no signature
//! without its record; another account's client is refused on the WebSocket port.
//!
//! Needs root (tmpfs mounts, a process run as `nobody`), as CI runs it; `curl` for the WebSocket
//! upgrade of the other account.

mod agent_support;
mod custody_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use agent_support::{DEADLINE, SENTINEL_PIN, TestAgent};
use serde_json::{Value, json};
use ukey::agent::client::ClientError;

const POLICY: &str = "mode = \"deny\"\ndevelopment = true\nunit = \"Finance Bureau\"\n";

fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// An agent serving one fresh soft token, with its system directory at `<dir>/system` holding
/// `policy` (none when empty) and any extra environment.
fn agent_with(policy: &str, env: &[(&str, &Path)]) -> (TestAgent, soft::SoftFixture, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let system = dir.path().join("system");
    std::fs::create_dir_all(&system).unwrap();
    if !policy.is_empty() {
        std::fs::write(system.join("policy.toml"), policy).unwrap();
    }
    let fixture = soft::soft_token(&dir.path().join("soft"), "Alice", ukey_api::KeyAlgorithm::P256, 3);
    let mut all: Vec<(&str, &Path)> = vec![("UKEY_SYSTEM_DIR", system.as_path())];
    all.extend_from_slice(env);
    let agent = TestAgent::start_in_env(dir, &[], &all);
    soft::wait_tokens(&agent, 1);
    (agent, fixture, system)
}

/// `ukey helpdesk ...` on the agent's machine (the helpdesk drives the carrier itself).
fn helpdesk(agent: &TestAgent, args: &[&str]) -> Output {
    agent
        .ukey()
        .arg("helpdesk")
        .args(args)
        .env("UKEY_SO_PIN", soft::SO_PIN)
        .env("UKEY_NO_AGENT", "1")
        .output()
        .expect("run ukey helpdesk")
}

fn bind_to(agent: &TestAgent, serial: &str, account: &str) {
    let out = helpdesk(
        agent,
        &[
            "bind",
            "--token",
            serial,
            "--holder-name",
            "Li Si",
            "--holder-id",
            "E2002",
            "--unit",
            "Finance",
            "--account",
            account,
            "--rights",
            "sign",
        ],
    );
    assert!(out.status.success(), "bind: {}", text(&out));
}

fn sign_over_unix(agent: &TestAgent, handle: &str) -> Result<Value, ClientError> {
    agent.unix().call("sign", json!({ "key": handle, "data": "aGk=", "pin": SENTINEL_PIN }))
}

/// The records of the holder's audit log, through `ukey audit show --json`.
fn audit_records(agent: &TestAgent) -> Vec<Value> {
    let out = agent.ukey().args(["audit", "show", "--json"]).output().unwrap();
    assert!(out.status.success(), "audit show: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    v["records"].as_array().cloned().unwrap_or_default().into_iter().map(|r| r["record"].clone()).collect()
}

fn audit_verify(agent: &TestAgent) -> Output {
    agent.ukey().args(["audit", "verify"]).output().unwrap()
}

fn count(records: &[Value], event: &str, result: Option<&str>) -> usize {
    records.iter().filter(|r| r["event"] == event && result.is_none_or(|want| r["result"] == want)).count()
}

#[test]
fn a_carrier_bound_to_another_account_is_refused_by_the_agent_and_the_cli_through_it() {
    let (agent, fx, _system) = agent_with(POLICY, &[]);
    bind_to(&agent, &fx.serial, "nobody");

    let err = sign_over_unix(&agent, &fx.handle).expect_err("a key bound to `nobody` is refused for root");
    let (kind, message) = match &err {
        ClientError::Rpc { kind, message, .. } => (kind.clone(), message.clone()),
        other => panic!("expected a refusal, got {other}"),
    };
    assert_eq!(kind, "PolicyDenied", "{err}");
    assert!(
        message.contains("this key is registered to Li Si (Finance); account root may not use it"),
        "the refusal names the holder and the account: {message}"
    );

    // The CLI finds the running agent and goes through it: the same refusal, exit code 6.
    let input = agent.dir.path().join("doc.txt");
    std::fs::write(&input, b"contract 7").unwrap();
    let out = agent
        .ukey()
        .args(["sign", "--token", &fx.serial, "--key", "Alice", "--in"])
        .arg(&input)
        .env("UKEY_PIN", SENTINEL_PIN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(text(&out).contains("registered to Li Si (Finance); account root may not use it"), "{}", text(&out));
    agent.wait_log("Unix-socket client connected");

    // Re-bound to this account, the same request signs, and every step is on record.
    let out = helpdesk(&agent, &["rebind", "--token", &fx.serial, "--account", "root"]);
    assert!(out.status.success(), "rebind: {}", text(&out));
    let ok = sign_over_unix(&agent, &fx.handle).expect("bound to root: allowed");
    assert!(ok["signature"].is_string(), "{ok}");

    let records = audit_records(&agent);
    assert_eq!(count(&records, "refusal", None), 2, "two refusals on record: {records:?}");
    let refusal = records.iter().find(|r| r["event"] == "refusal").unwrap();
    assert_eq!(refusal["serial"], fx.serial.as_str());
    assert_eq!(refusal["account"], "root");
    assert_eq!(refusal["op"], "sign");
    let done: Vec<&Value> = records.iter().filter(|r| r["event"] == "use" && r["result"] == "done").collect();
    assert_eq!(done.len(), 1, "{records:?}");
    assert_eq!(done[0]["holder"], "Li Si (Finance)", "the use names the holder: {records:?}");
    assert_eq!(done[0]["data_sm3"], hex::encode(ukey_api::HashAlg::Sm3.digest(b"hi")), "SM3 of the data signed");
    assert!(done[0]["intent"].is_u64(), "the outcome closes its intent record");
    let verify = audit_verify(&agent);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(!agent.log().contains(SENTINEL_PIN), "the PIN never reaches the log");
}

#[test]
fn a_read_only_audit_directory_refuses_every_use_with_a_clear_message() {
    custody_support::require_root("mounting a read-only audit directory");
    let mounts = tempfile::tempdir().unwrap();
    let ro = custody_support::Mount::tmpfs(&mounts.path().join("ro"), "64k", "ro");
    let audit = ro.path.join("audit");
    let (agent, fx, _system) = agent_with("", &[("UKEY_AUDIT_DIR", audit.as_path())]);

    let err = sign_over_unix(&agent, &fx.handle).expect_err("no use without its record");
    let message = err.to_string();
    assert!(matches!(&err, ClientError::Rpc { kind, .. } if kind == "PolicyDenied"), "{err}");
    assert!(message.contains("audit"), "the refusal says the audit log is the reason: {message}");
    assert!(message.contains(&audit.display().to_string()), "and where it is: {message}");
    assert!(!message.contains("signature"), "{message}");
}

/// The audit directory turns read-only under a running agent that already holds its log open.
/// A read-only remount of the directory's own file system is refused (EBUSY) while files on it
/// are open for writing, so a read-only tmpfs is mounted over the directory instead: every path
/// the agent resolves from then on is read-only, as after `mount -o remount,ro` or a disk error.
#[test]
fn an_audit_directory_turning_read_only_under_the_agent_refuses_uses_keeps_status_and_recovers() {
    custody_support::require_root("mounting a read-only file system over the audit directory");
    let base = tempfile::tempdir().unwrap();
    let audit = base.path().join("audit");
    let (agent, fx, _system) = agent_with("", &[("UKEY_AUDIT_DIR", audit.as_path())]);
    let first = sign_over_unix(&agent, &fx.handle).expect("a writable log: the use is allowed");
    assert!(first["signature"].is_string(), "{first}");

    let read_only = custody_support::Mount::tmpfs(&audit, "64k", "ro");
    for _ in 0..2 {
        let err = sign_over_unix(&agent, &fx.handle).expect_err("no use without its record");
        assert!(matches!(&err, ClientError::Rpc { kind, .. } if kind == "PolicyDenied"), "fail-closed: {err}");
        assert!(err.to_string().contains("audit"), "the refusal names the audit log: {err}");
    }
    let status = agent.unix().call("agent.status", json!({})).expect("status is served while the log is read-only");
    assert_eq!(status["carriers"], 1, "{status}");

    // Writable again: the next use is allowed and recorded, and the chain verifies.
    drop(read_only);
    let again = sign_over_unix(&agent, &fx.handle).expect("the log is writable again: the use is allowed");
    assert!(again["signature"].is_string(), "{again}");
    let records = audit_records(&agent);
    assert_eq!(count(&records, "use", Some("done")), 2, "both delivered signatures are on record: {records:?}");
    let verify = audit_verify(&agent);
    assert!(verify.status.success(), "the chain verifies after the read-only spell: {}", text(&verify));
}

#[test]
fn a_full_audit_disk_withholds_the_result_and_every_signature_has_its_record() {
    custody_support::require_root("mounting a small tmpfs for the audit log");
    let mounts = tempfile::tempdir().unwrap();
    let small = custody_support::Mount::tmpfs(&mounts.path().join("small"), "16k", "");
    let audit = small.path.join("audit");
    let (agent, fx, _system) = agent_with("", &[("UKEY_AUDIT_DIR", audit.as_path())]);

    // Fill the file system up to the audit log's own growth.
    let first = sign_over_unix(&agent, &fx.handle).expect("room for the first use");
    assert!(first["signature"].is_string());
    let filler = small.path.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 64 * 1024]);

    let mut delivered = 1usize;
    let refusal = loop {
        match sign_over_unix(&agent, &fx.handle) {
            Ok(v) => {
                assert!(v["signature"].is_string(), "{v}");
                delivered += 1;
                assert!(delivered < 200, "the audit log never ran out of room on a 16 KiB file system");
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(&refusal, ClientError::Rpc { kind, .. } if kind == "PolicyDenied"), "{refusal}");
    assert!(refusal.to_string().contains("audit"), "{refusal}");

    // Free the space: every signature delivered has a `done` record, and the chain verifies.
    std::fs::remove_file(&filler).unwrap();
    let records = audit_records(&agent);
    let done = count(&records, "use", Some("done"));
    assert!(done >= delivered, "{delivered} signatures were delivered but only {done} uses are on record");
    assert!(done <= delivered + 1, "at most the withheld use may be recorded as done: {records:?}");
    let verify = audit_verify(&agent);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn killing_the_agent_while_it_signs_never_breaks_the_chain_or_loses_a_use() {
    let (mut agent, fx, _system) = agent_with("", &[]);
    let mut delivered = 0usize;
    for round in 0..5 {
        // Sign in a loop on another thread; kill the agent once a few signatures came back,
        // i.e. while the next ones are in flight.
        let socket = agent.socket.clone();
        let handle = fx.handle.clone();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let signer = std::thread::spawn(move || {
            let mut got = 0usize;
            let Ok(mut c) = ukey::agent::client::AgentClient::connect(&socket) else { return got };
            let _ = c.set_timeout(Some(DEADLINE));
            while c.call("sign", json!({ "key": handle, "data": "aGk=", "pin": SENTINEL_PIN })).is_ok() {
                got += 1;
                let _ = tx.send(());
            }
            got
        });
        for _ in 0..(2 + round) {
            rx.recv_timeout(DEADLINE).expect("the agent signs before it is killed");
        }
        agent.crash();
        delivered += signer.join().expect("signer thread");
        agent.restart();
        soft::wait_tokens(&agent, 1);
    }
    let verify = audit_verify(&agent);
    assert!(verify.status.success(), "the chain verifies after 5 SIGKILLs: {}", text(&verify));
    let records = audit_records(&agent);
    let done = count(&records, "use", Some("done"));
    assert!(done >= delivered, "{delivered} signatures were delivered but only {done} uses are on record");
    assert!(count(&records, "intent", None) >= done, "every use has its intent record");
}

#[test]
fn another_accounts_client_is_refused_on_the_websocket_port_and_the_unix_socket() {
    custody_support::require_root("running a client as the `nobody` account");
    let (agent, _fx, _system) = agent_with("", &[]);
    let curl = Path::new("/usr/bin/curl");
    assert!(curl.exists(), "this test needs curl: apt-get install curl");
    let started = Instant::now();
    let out = Command::new(curl)
        .env_clear()
        .env("HOME", "/tmp")
        .uid(65534)
        .gid(65534)
        .args(["-s", "-i", "--max-time", "20"])
        .args(["-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13"])
        .args(["-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H", "Origin: http://localhost:8080"])
        .arg(format!("http://127.0.0.1:{}/rpc", agent.port))
        .output()
        .expect("run curl as nobody");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.starts_with("HTTP/1.1 403"), "another account's client is refused: {answer:?} {}", text(&out));
    assert!(answer.contains("nobody") || answer.contains("65534"), "the refusal names the account: {answer}");
    assert!(started.elapsed() < DEADLINE);
    agent.wait_log("refused a connection");

    // The Unix socket: its directory is private to the agent's account.
    let out = Command::new(agent_support::ukey_bin())
        .env_clear()
        .env("HOME", "/tmp")
        .env("XDG_RUNTIME_DIR", agent.dir.path().join("run"))
        .uid(65534)
        .gid(65534)
        .args(["agent", "status"])
        .output()
        .expect("run ukey as nobody");
    assert!(!out.status.success(), "nobody reached root's agent: {}", text(&out));
}
