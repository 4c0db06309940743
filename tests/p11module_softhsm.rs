//! `libukey_pkcs11.so` in front of a vendor PKCS#11 module: a real `ukey agent` runs only its
//! `pkcs11` driver, which loads SoftHSM2, and OpenSC's `pkcs11-tool` talks to the agent through
//! the module. `--test` passes (EC and RSA keys, including the SHA-1 DigestInfo it signs with
//! `CKM_RSA_PKCS`), and signatures made through the chain verify with `openssl` against the
//! public keys read from SoftHSM directly.

mod agent_support;
mod p11module_support;
mod pkcs11_rig;
#[path = "agent_support/soft.rs"]
mod soft;

use std::path::Path;
use std::process::Command;

use agent_support::TestAgent;
use p11module_support::{client, module_path, run_ok, stdout, write_file};
use pkcs11_rig::{PIN, Rig};

/// A SoftHSM token "Hsm" with a P-256 key (id 01) and an RSA-2048 key (id 02), each with a
/// certificate, and an agent that serves it through its pkcs11 driver only.
fn agent_in_front_of_softhsm(rig: &Rig) -> TestAgent {
    rig.init_token("Hsm");
    for (key_type, id, label) in [("EC:prime256v1", "01", "hsm-ec"), ("rsa:2048", "02", "hsm-rsa")] {
        rig.pkcs11_tool(&[
            "--token-label",
            "Hsm",
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            key_type,
            "--id",
            id,
            "--label",
            label,
        ])
        .ok("pkcs11-tool --keypairgen on SoftHSM");
        let spki_pem = public_key_pem(rig, id);
        let cert = rig.certificate_for(&spki_pem, label);
        let cert_path = rig.path(&format!("{label}.cert.der"));
        std::fs::write(&cert_path, cert).expect("certificate file");
        rig.pkcs11_tool(&[
            "--token-label",
            "Hsm",
            "--login",
            "--pin",
            PIN,
            "--write-object",
            cert_path.to_str().unwrap_or_default(),
            "--type",
            "cert",
            "--id",
            id,
            "--label",
            label,
        ])
        .ok("pkcs11-tool --write-object cert on SoftHSM");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // Only the pkcs11 driver, configured (no p11-kit) to load SoftHSM with this rig's tokens.
    let agent = TestAgent::start_in_env(
        dir,
        &[],
        &[("UKEY_DRIVERS", Path::new("pkcs11")), ("UKEY_CONFIG", &rig.config), ("SOFTHSM2_CONF", &rig.softhsm_conf)],
    );
    wait_for_token(&agent, "Hsm");
    agent
}

/// Waits (bounded) until the agent lists a carrier labelled `label` (SoftHSM also shows its
/// empty slot as a second, uninitialised token).
fn wait_for_token(agent: &TestAgent, label: &str) {
    let until = std::time::Instant::now() + agent_support::DEADLINE;
    let mut c = agent.unix();
    loop {
        let listed = c.call("tokens.list", serde_json::json!({})).expect("tokens.list");
        let tokens = listed["tokens"].as_array().cloned().unwrap_or_default();
        if tokens.iter().any(|t| t["label"] == label) {
            return;
        }
        assert!(std::time::Instant::now() < until, "the agent never listed the SoftHSM token {label}: {listed}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The public key of SoftHSM object `id`, PEM, read from SoftHSM itself (not through ukey).
fn public_key_pem(rig: &Rig, id: &str) -> String {
    let der = rig.path(&format!("pub-{id}.der"));
    rig.pkcs11_tool(&[
        "--token-label",
        "Hsm",
        "--read-object",
        "--type",
        "pubkey",
        "--id",
        id,
        "-o",
        der.to_str().unwrap_or_default(),
    ])
    .ok("pkcs11-tool --read-object pubkey on SoftHSM");
    rig.run("openssl", &["pkey", "-pubin", "-inform", "DER", "-in", der.to_str().unwrap_or_default()])
        .ok("openssl pkey")
        .stdout
}

fn tool(agent: &TestAgent) -> Command {
    pkcs11_rig::require("pkcs11-tool", "opensc");
    let mut c = client(agent, "pkcs11-tool");
    c.arg("--module").arg(module_path());
    c
}

#[test]
fn pkcs11_tool_through_the_module_signs_with_softhsm_keys_and_openssl_verifies() {
    let rig = Rig::new();
    let agent = agent_in_front_of_softhsm(&rig);

    let slots = stdout(&run_ok(tool(&agent).arg("-L")));
    assert!(slots.contains("Hsm"), "the SoftHSM token is the module's slot: {slots}");

    // The PIN the program gives is forwarded to the agent, which logs in on SoftHSM with it.
    let out = run_ok(tool(&agent).args(["--token-label", "Hsm", "--login", "--pin", PIN, "--test", "--allow-sw"]));
    let text = stdout(&out);
    assert!(text.contains("No errors"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("SHA1-RSA-PKCS: OK"), "the RSA key was tested: {text}");

    let dir = tempfile::tempdir().expect("temp dir");
    let data = write_file(dir.path(), "data.bin", b"signed by SoftHSM behind the agent behind the module");
    for (id, mechanism, extra) in [
        ("01", "ECDSA-SHA256", &["--signature-format", "openssl"][..]),
        ("02", "SHA256-RSA-PKCS", &[][..]),
        ("02", "SHA512-RSA-PKCS", &[][..]),
    ] {
        let sig = dir.path().join(format!("{id}-{mechanism}.sig"));
        run_ok(
            tool(&agent)
                .args(["--token-label", "Hsm", "--login", "--pin", PIN, "--sign", "--id", id, "-m", mechanism])
                .args(extra)
                .arg("-i")
                .arg(&data)
                .arg("-o")
                .arg(&sig),
        );
        let public = write_file(dir.path(), &format!("pub-{id}.pem"), public_key_pem(&rig, id).as_bytes());
        let digest = if mechanism.starts_with("SHA512") { "-sha512" } else { "-sha256" };
        let verified = run_ok(
            Command::new("openssl")
                .args(["dgst", digest, "-verify"])
                .arg(&public)
                .arg("-signature")
                .arg(&sig)
                .arg(&data),
        );
        assert!(stdout(&verified).contains("Verified OK"), "{mechanism}: {}", stdout(&verified));
    }
    // Every use passed the agent's gate, which names the client program.
    let log = agent.log();
    let uses = log.lines().filter(|l| l.contains("use: ") && l.contains("bin/pkcs11-tool (pid")).count();
    assert!(uses >= 3, "each signature is a recorded use by pkcs11-tool:\n{log}");
}
