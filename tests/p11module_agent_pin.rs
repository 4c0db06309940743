//! `libukey_pkcs11.so` in the agent PIN mode (`UKEY_PKCS11_PIN=agent`), with real clients against
//! a real agent serving a soft token: tokens do not require a login, private keys are found before
//! one, and a signature without a login makes the agent ask the holder (the scripted pinentry, real
//! Assuan) for that signature, naming the program; custody gate and audit record apply as in the
//! login mode. A program that logs in anyway signs on its login (`pkcs11-tool --login --test`).

mod agent_support;
mod p11module_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::path::Path;
use std::process::Command;

use agent_support::{SENTINEL_PIN, TestAgent};
use p11module_support::*;
use ukey_api::KeyAlgorithm;

fn tool(agent: &TestAgent) -> Command {
    require("pkcs11-tool", "opensc");
    let mut c = client_in(agent, "pkcs11-tool", "agent");
    c.arg("--module").arg(module_path());
    c
}

/// The public key of a test key as a PEM file, for `openssl` to verify with.
fn public_key_pem(dir: &Path, key: &TestKey) -> std::path::PathBuf {
    let cert = write_file(dir, "cert.pem", cert_pem(&key.cert_der).as_bytes());
    let pubkey = dir.join("pub.pem");
    run_ok(Command::new("openssl").args(["x509", "-pubkey", "-noout", "-in"]).arg(&cert).arg("-out").arg(&pubkey));
    pubkey
}

fn openssl_verifies(dir: &Path, key: &TestKey, data: &Path, sig: &Path) {
    let pubkey = public_key_pem(dir, key);
    let out = run_ok(
        Command::new("openssl").args(["dgst", "-sha256", "-verify"]).arg(&pubkey).arg("-signature").arg(sig).arg(data),
    );
    assert!(stdout(&out).contains("Verified OK"), "{}: {}", key.label, stdout(&out));
}

/// The agent's use records (the audit log's feed) by a program.
fn uses_by(agent: &TestAgent, program: &str) -> usize {
    agent.log().lines().filter(|l| l.contains("use: ") && l.contains(&format!("{program} (pid"))).count()
}

#[test]
fn tokens_need_no_login_and_private_keys_are_listed_at_once() {
    let (agent, token) = agent_with_token(&[KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }], &[]);
    let slots = stdout(&run_ok(tool(&agent).arg("-L")));
    assert!(slots.contains("Alice") && slots.contains("PIN pad present"), "{slots}");
    assert!(!slots.contains("login required"), "the agent asks for the PIN, not the program: {slots}");
    let objects = stdout(&run_ok(tool(&agent).arg("-O")));
    assert_eq!(objects.matches("Private Key Object").count(), token.keys.len(), "{objects}");
    assert_eq!(objects.matches("Certificate Object").count(), token.keys.len(), "{objects}");
    assert!(agent.dialogs().is_empty(), "listing asks nothing: {:?}", agent.dialogs());
}

#[test]
fn a_signature_without_login_asks_the_holder_through_the_agent() {
    let (agent, token) = agent_with_token(&[KeyAlgorithm::P256], &[]);
    let dir = tempfile::tempdir().unwrap();
    let key = token.key(KeyAlgorithm::P256);
    let data = write_file(dir.path(), "data.bin", b"signed without C_Login");
    let sig = dir.path().join("sig.der");
    let sign = |agent: &TestAgent| {
        tool(agent)
            .args(["--sign", "-m", "ECDSA-SHA256", "--signature-format", "openssl", "--id", &key.id, "-i"])
            .arg(&data)
            .arg("-o")
            .arg(&sig)
            .output()
            .expect("run pkcs11-tool")
    };

    agent.script(&[&pin_line(), &pin_line()]);
    for round in 1..=2 {
        let out = sign(&agent);
        assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        openssl_verifies(dir.path(), key, &data, &sig);
        let dialogs = agent.dialogs();
        assert_eq!(dialogs.len(), round, "one dialog per signature (no PIN cache): {dialogs:?}");
        let text = dialogs[round - 1]["description"].as_str().unwrap_or_default();
        assert!(text.contains("pkcs11-tool"), "the dialog names the program: {text}");
    }
    assert_eq!(uses_by(&agent, "pkcs11-tool"), 2, "each signature is recorded: {}", agent.log());

    // The holder cancels: no signature, and the program is told.
    let _ = std::fs::remove_file(&sig);
    agent.script(&["cancel"]);
    let out = sign(&agent);
    assert!(!out.status.success(), "a cancelled dialog signs nothing");
    assert!(std::fs::read(&sig).map(|s| s.is_empty()).unwrap_or(true), "no signature was written");
    assert!(!agent.log().contains(SENTINEL_PIN), "the PIN never reaches the agent's log");
}

#[test]
fn a_program_that_logs_in_anyway_signs_on_its_login() {
    let (agent, _token) = agent_with_token(&ALL, &[]);
    agent.script(&[&pin_line()]);
    let out = run_ok(tool(&agent).args(["--login", "--test", "--allow-sw"]));
    let text = stdout(&out);
    assert!(text.contains("No errors"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(agent.dialogs().len(), 1, "one dialog, the login: {:?}", agent.dialogs());
}

#[test]
fn gnutls_signs_without_logging_in() {
    require("p11tool", "gnutls-bin");
    let (agent, token) = agent_with_token(&[KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }], &[]);
    let pin = pin_line();
    agent.script(&[&pin, &pin]);
    for key in &token.keys {
        let uri = format!("pkcs11:token={};object={};type=private", token.label, key.label.replace(' ', "%20"));
        let out = run_ok(
            client_in(&agent, "p11tool", "agent").arg("--provider").arg(module_path()).arg("--test-sign").arg(uri),
        );
        let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("Verifying against public key") && !text.contains("failed"), "{}: {text}", key.label);
    }
    assert_eq!(agent.dialogs().len(), token.keys.len(), "one dialog per signature: {:?}", agent.dialogs());
    assert_eq!(uses_by(&agent, "p11tool"), token.keys.len(), "{}", agent.log());
}

#[test]
fn openssl_engine_signs_with_the_agents_dialog() {
    let (agent, token) = agent_with_token(&[KeyAlgorithm::P256], &[]);
    let dir = tempfile::tempdir().unwrap();
    let conf = openssl_conf(dir.path());
    let key = token.key(KeyAlgorithm::P256);
    let data = write_file(dir.path(), "data.bin", b"an invoice, signed through the engine");
    let sig = dir.path().join("sig.bin");
    // No PIN in the URI: the holder answers the agent's dialog.
    let uri = format!("pkcs11:token={};object={};type=private", token.label, key.label.replace(' ', "%20"));
    agent.script(&[&pin_line()]);
    run_ok(
        client_in(&agent, "openssl", "agent")
            .env("OPENSSL_CONF", &conf)
            .args(["dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine", "-sign", &uri, "-out"])
            .arg(&sig)
            .arg(&data),
    );
    openssl_verifies(dir.path(), key, &data, &sig);
    assert_eq!(agent.dialogs().len(), 1, "{:?}", agent.dialogs());
    assert!(uses_by(&agent, "bin/openssl") >= 1, "{}", agent.log());
}
