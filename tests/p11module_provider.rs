//! `libukey_pkcs11.so` behind OpenSSL 3's pkcs11 provider (Debian's `pkcs11-provider`, from
//! bookworm-backports through scripts/apt-backports.txt): `openssl pkeyutl -sign`,
//! `openssl dgst -sign` and `openssl req -new` with `-provider pkcs11 -provider default` and a
//! `pkcs11:` URI key reach the carrier through the real agent (PIN from its scripted pinentry),
//! and plain `openssl` verifies each signature with the certificate's public key.

mod agent_support;
mod p11module_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::path::{Path, PathBuf};
use std::process::Command;

use agent_support::TestAgent;
use p11module_support::*;
use ukey_api::KeyAlgorithm;

/// Where Debian's OpenSSL looks for providers (`openssl version -m`).
fn require_provider() {
    let out = run_ok(Command::new("openssl").args(["version", "-m"]));
    let dir = stdout(&out).split('"').nth(1).unwrap_or_default().to_string();
    assert!(
        Path::new(&dir).join("pkcs11.so").is_file(),
        "OpenSSL's pkcs11 provider is missing in {dir}: install `pkcs11-provider` (Debian 12: from \
         bookworm-backports, see scripts/apt-backports.txt)"
    );
}

/// `openssl ARGS -provider pkcs11 -provider default` with the module as the provider's module.
fn openssl(agent: &TestAgent) -> Command {
    let mut c = client(agent, "openssl");
    c.env("PKCS11_PROVIDER_MODULE", module_path());
    c
}

fn providers(cmd: &mut Command) -> &mut Command {
    cmd.args(["-provider", "pkcs11", "-provider", "default"])
}

fn uri(token: &TestToken, key: &TestKey) -> String {
    format!("pkcs11:token={};object={};type=private", token.label, key.label.replace(' ', "%20"))
}

/// The public key of a test key's certificate, PEM, as a file.
fn public_key(dir: &Path, key: &TestKey) -> PathBuf {
    let cert = write_file(dir, "cert.pem", cert_pem(&key.cert_der).as_bytes());
    let public = dir.join(format!("{}.pub.pem", key.id));
    run_ok(Command::new("openssl").args(["x509", "-pubkey", "-noout", "-in"]).arg(&cert).arg("-out").arg(&public));
    public
}

#[test]
fn openssl_pkcs11_provider_signs_with_carrier_keys_and_openssl_verifies() {
    require_provider();
    let (agent, token) = agent_with_token(&[KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }], &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = write_file(dir.path(), "data.bin", b"an order, signed through OpenSSL's pkcs11 provider");
    let pin = pin_line();
    agent.script(&[&pin, &pin, &pin, &pin, &pin, &pin]);

    // pkeyutl over a digest: CKM_ECDSA / CKM_RSA_PKCS with the provider's DigestInfo.
    let digest = write_file(dir.path(), "digest.bin", &ukey_api::HashAlg::Sha256.digest(b"pkeyutl input"));
    for key in &token.keys {
        let sig = dir.path().join(format!("pkeyutl-{}.sig", key.id));
        let mut cmd = openssl(&agent);
        cmd.args(["pkeyutl", "-sign", "-inkey", &uri(&token, key), "-in"]).arg(&digest).arg("-out").arg(&sig);
        if matches!(key.algorithm, KeyAlgorithm::Rsa { .. }) {
            cmd.args(["-pkeyopt", "digest:sha256"]);
        }
        run_ok(providers(&mut cmd));
        let public = public_key(dir.path(), key);
        let mut verify = Command::new("openssl");
        verify.args(["pkeyutl", "-verify", "-pubin", "-inkey"]).arg(&public).arg("-in").arg(&digest);
        verify.arg("-sigfile").arg(&sig);
        if matches!(key.algorithm, KeyAlgorithm::Rsa { .. }) {
            verify.args(["-pkeyopt", "digest:sha256"]);
        }
        let out = run_ok(&mut verify);
        assert!(stdout(&out).contains("Signature Verified Successfully"), "{}: {}", key.label, stdout(&out));
    }

    // dgst over the message, SHA-256 and (RSA) SHA-512.
    for (key, hash) in [
        (token.key(KeyAlgorithm::P256), "-sha256"),
        (token.key(KeyAlgorithm::Rsa { bits: 2048 }), "-sha256"),
        (token.key(KeyAlgorithm::Rsa { bits: 2048 }), "-sha512"),
    ] {
        let sig = dir.path().join(format!("dgst-{}{hash}.sig", key.id));
        let mut cmd = openssl(&agent);
        cmd.args(["dgst", hash, "-sign", &uri(&token, key), "-out"]).arg(&sig);
        run_ok(providers(&mut cmd).arg(&data));
        let public = public_key(dir.path(), key);
        let out = run_ok(
            Command::new("openssl").args(["dgst", hash, "-verify"]).arg(&public).arg("-signature").arg(&sig).arg(&data),
        );
        assert!(stdout(&out).contains("Verified OK"), "{} {hash}: {}", key.label, stdout(&out));
    }

    // A certificate request signed with the carrier key; its self-signature verifies.
    let key = token.key(KeyAlgorithm::P256);
    let req = dir.path().join("req.pem");
    let mut cmd = openssl(&agent);
    cmd.args(["req", "-new", "-key", &uri(&token, key), "-subj", "/CN=through the provider", "-out"]).arg(&req);
    run_ok(providers(&mut cmd));
    let out = run_ok(Command::new("openssl").args(["req", "-verify", "-noout", "-text", "-in"]).arg(&req));
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("verify OK") || text.contains("Certificate request self-signature verify OK"), "{text}");
    let public = std::fs::read_to_string(public_key(dir.path(), key)).expect("public key");
    let req_public = run_ok(Command::new("openssl").args(["req", "-pubkey", "-noout", "-in"]).arg(&req));
    assert_eq!(stdout(&req_public).trim(), public.trim(), "the request carries the carrier key");

    let log = agent.log();
    let uses = log.lines().filter(|l| l.contains("use: ") && l.contains("bin/openssl (pid")).count();
    assert!(uses >= 6, "each signature went through the agent's gate as openssl's use ({uses}):\n{log}");
}
