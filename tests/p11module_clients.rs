//! `libukey_pkcs11.so` with the other PKCS#11 clients desktop programs are built on, each against
//! a real `ukey agent` serving a soft token: GnuTLS (`p11tool`), OpenSSL (the pkcs11 engine of
//! libp11), OpenSSH (`ssh-keygen -D`) and NSS (`modutil` / `certutil`). Signatures are checked
//! with `openssl` against the carrier's certificate; the agent's audit log names the client.

mod agent_support;
mod p11module_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::process::Command;

use agent_support::{SENTINEL_PIN, TestAgent};
use p11module_support::*;
use ukey_api::KeyAlgorithm;

/// The token's PKCS#11 URI with one object (labels are percent-encoded: they hold spaces).
fn object_uri(token: &TestToken, key: &TestKey, kind: &str) -> String {
    format!("pkcs11:token={};object={};type={kind}", token.label, key.label.replace(' ', "%20"))
}

fn p11tool(agent: &TestAgent) -> Command {
    require("p11tool", "gnutls-bin");
    let mut c = client(agent, "p11tool");
    c.arg("--provider").arg(module_path());
    c
}

#[test]
fn gnutls_p11tool_lists_and_test_signs() {
    let (agent, token) =
        agent_with_token(&[KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }, KeyAlgorithm::P384], &[]);
    let tokens = stdout(&run_ok(p11tool(&agent).arg("--list-tokens")));
    assert!(tokens.contains("Label: Alice") && tokens.contains(&token.serial), "{tokens}");

    let certs = stdout(&run_ok(p11tool(&agent).args(["--list-all-certs", "pkcs11:token=Alice"])));
    for key in &token.keys {
        assert!(certs.contains(&key.label), "{} is listed: {certs}", key.label);
    }
    assert_eq!(certs.matches("Type: X.509 Certificate").count(), 3, "{certs}");

    // The token announces a protected authentication path, so GnuTLS logs in without a PIN and
    // the holder answers the agent's dialog (the scripted pinentry), once per program run.
    let pin = pin_line();
    agent.script(&[&pin, &pin, &pin]);
    for key in &token.keys {
        let out = run_ok(p11tool(&agent).args(["--login", "--test-sign"]).arg(object_uri(&token, key, "private")));
        let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("Verifying against public key") && text.contains("ok"), "{}: {text}", key.label);
        assert!(!text.contains("failed"), "{}: {text}", key.label);
    }
    assert_eq!(agent.dialogs().len(), token.keys.len(), "one PIN dialog per login: {:?}", agent.dialogs());
    assert!(!agent.log().contains(SENTINEL_PIN), "the PIN never reaches the agent's log");
}

#[test]
fn openssl_engine_signs_and_openssl_verifies() {
    let (agent, token) = agent_with_token(&[KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }], &[]);
    let dir = tempfile::tempdir().unwrap();
    let conf = openssl_conf(dir.path());
    let data = write_file(dir.path(), "data.bin", b"an invoice, signed through the engine");
    for key in &token.keys {
        let sig = dir.path().join("sig.bin");
        let _ = std::fs::remove_file(&sig);
        let uri = format!("{};pin-value={SENTINEL_PIN}", object_uri(&token, key, "private"));
        run_ok(
            client(&agent, "openssl")
                .env("OPENSSL_CONF", &conf)
                .args(["dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine", "-sign", &uri, "-out"])
                .arg(&sig)
                .arg(&data),
        );
        let cert = write_file(dir.path(), "cert.pem", cert_pem(&key.cert_der).as_bytes());
        let pubkey = dir.path().join("pub.pem");
        run_ok(Command::new("openssl").args(["x509", "-pubkey", "-noout", "-in"]).arg(&cert).arg("-out").arg(&pubkey));
        let out = run_ok(
            Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(&pubkey)
                .arg("-signature")
                .arg(&sig)
                .arg(&data),
        );
        assert!(stdout(&out).contains("Verified OK"), "{}: {}", key.label, stdout(&out));
    }
    // Every use is recorded by the agent's gate (the audit log's feed) with the client's executable.
    let log = agent.log();
    let uses: Vec<&str> = log.lines().filter(|l| l.contains("use: ") && l.contains("bin/openssl (pid")).collect();
    assert!(uses.len() >= token.keys.len(), "each signature is recorded with the program that asked: {log}");
    assert!(!agent.log().contains(SENTINEL_PIN));
}

#[test]
fn ssh_keygen_prints_the_carriers_public_keys() {
    require("ssh-keygen", "openssh-client");
    let (agent, token) =
        agent_with_token(&[KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }, KeyAlgorithm::P384], &[]);
    for mode in PIN_MODES {
        let out = run_ok(client_in(&agent, "ssh-keygen", mode).arg("-D").arg(module_path()));
        let keys = stdout(&out);
        assert!(keys.contains("ecdsa-sha2-nistp256 "), "{mode}: {keys}");
        assert!(keys.contains("ecdsa-sha2-nistp384 "), "{mode}: {keys}");
        assert!(keys.contains("ssh-rsa "), "{mode}: {keys}");
        assert_eq!(keys.lines().count(), token.keys.len(), "{mode}: one line per key: {keys}");
    }
    assert!(agent.dialogs().is_empty(), "reading public keys asks nothing");
}

#[test]
fn nss_lists_the_carriers_certificates() {
    require("modutil", "libnss3-tools");
    require("certutil", "libnss3-tools");
    let (agent, token) = agent_with_token(&[KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }], &[]);
    for mode in PIN_MODES {
        let dialogs_before = agent.dialogs().len();
        let db = tempfile::tempdir().unwrap();
        let dbarg = format!("sql:{}", db.path().display());
        run_ok(client_in(&agent, "certutil", mode).args(["-N", "--empty-password", "-d", &dbarg]));
        run_ok(
            client_in(&agent, "modutil", mode)
                .args(["-force", "-dbdir", &dbarg, "-add", "ukey", "-libfile"])
                .arg(module_path()),
        );
        let modules = stdout(&run_ok(client_in(&agent, "modutil", mode).args(["-list", "-dbdir", &dbarg])));
        assert!(modules.contains("ukey") && modules.contains("Alice"), "{mode}: {modules}");
        let certs = stdout(&run_ok(client_in(&agent, "certutil", mode).args(["-L", "-h", "all", "-d", &dbarg])));
        for key in &token.keys {
            assert!(certs.contains(&format!("Alice:{}", key.label)), "{mode}: {} is listed: {certs}", key.label);
        }
        if mode == "agent" {
            // No login needed: NSS finds the private keys behind the certificates at once, which
            // is what a browser's client-certificate search does.
            let keys = stdout(&run_ok(client_in(&agent, "certutil", mode).args(["-K", "-h", "ukey", "-d", &dbarg])));
            for key in &token.keys {
                assert!(keys.contains(&key.label), "{}'s private key is found: {keys}", key.label);
            }
            let dialogs = agent.dialogs();
            assert_eq!(dialogs.len(), dialogs_before, "no login asked for: {dialogs:?}");
        }
    }
}
