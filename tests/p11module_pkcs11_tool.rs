//! `libukey_pkcs11.so` with OpenSC's `pkcs11-tool` against a real agent serving a soft token:
//! slots, tokens and objects are listed, `--test` passes, every mechanism signs and `openssl`
//! verifies, logins go through the agent's PIN dialog (the scripted pinentry, real Assuan) or
//! forward the program's PIN, and the PIN never reaches the agent's log.

mod agent_support;
mod p11module_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::process::Command;

use agent_support::SENTINEL_PIN;
use p11module_support::*;
use ukey_api::KeyAlgorithm;

fn tool(agent: &agent_support::TestAgent) -> Command {
    require("pkcs11-tool", "opensc");
    let mut c = client(agent, "pkcs11-tool");
    c.arg("--module").arg(module_path());
    c
}

#[test]
fn pkcs11_tool_lists_the_carrier_and_its_objects() {
    let (agent, token) = agent_with_token(&ALL, &[]);
    let slots = stdout(&run_ok(tool(&agent).arg("-L")));
    assert!(slots.contains("Alice"), "the token label is the carrier's: {slots}");
    assert!(slots.contains(&token.serial), "the serial is the carrier's: {slots}");
    assert!(slots.contains("login required") && slots.contains("PIN pad present"), "{slots}");

    let objects = stdout(&run_ok(tool(&agent).arg("-O")));
    assert_eq!(objects.matches("Certificate Object").count(), 4, "{objects}");
    assert_eq!(objects.matches("Public Key Object").count(), 4, "{objects}");
    assert_eq!(objects.matches("Private Key Object").count(), 0, "private keys only after login: {objects}");
    for key in &token.keys {
        assert!(objects.contains(&key.label), "{} is listed: {objects}", key.label);
        assert!(objects.contains(&key.id), "ids are the carrier's: {objects}");
    }
    assert!(objects.contains("EC_POINT 256 bits") && objects.contains("EC_POINT 384 bits"), "{objects}");
    assert!(objects.contains("RSA 2048 bits"), "{objects}");
    assert!(agent.dialogs().is_empty(), "listing asks nothing");

    agent.script(&[&pin_line()]);
    let with_login = stdout(&run_ok(tool(&agent).args(["--login", "-O"])));
    assert_eq!(with_login.matches("Private Key Object").count(), 4, "{with_login}");
    let dialogs = agent.dialogs();
    assert_eq!(dialogs.len(), 1, "one PIN dialog for the login: {dialogs:?}");
    let text = dialogs[0]["description"].as_str().unwrap_or_default();
    assert!(text.contains("pkcs11-tool") && text.contains("log in"), "the dialog names the program: {text}");
    assert!(!agent.log().contains(SENTINEL_PIN), "the PIN never reaches the agent's log");
}

#[test]
fn pkcs11_tool_test_passes_with_the_pin_from_the_agent_dialog() {
    // RSA included: OpenSC's `--test` signs CKM_RSA_PKCS over a SHA-1 DigestInfo (and the hashing
    // SHA1/SHA224/SHA384/SHA512-RSA-PKCS mechanisms), which the contract's `rsa-pkcs1` carries.
    let (agent, _token) = agent_with_token(&ALL, &[]);
    agent.script(&[&pin_line()]);
    // `--allow-sw`: the soft token's mechanisms rightly lack CKF_HW, which `--test` wants by default.
    let out = run_ok(tool(&agent).args(["--login", "--test", "--allow-sw"]));
    let text = stdout(&out);
    assert!(text.contains("No errors"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for tested in
        ["testing key 1 (Alice rsa2048)", "    RSA-PKCS: OK", "    SHA1-RSA-PKCS: OK", "    SHA256-RSA-PKCS: OK"]
    {
        assert!(text.contains(tested), "the RSA key is tested ({tested}): {text}");
    }
    assert_eq!(agent.dialogs().len(), 1, "one dialog: the login");
    assert!(!agent.log().contains(SENTINEL_PIN));
}

/// Signs `data` with `pkcs11-tool` and returns the signature.
fn sign(agent: &agent_support::TestAgent, dir: &std::path::Path, key: &TestKey, args: &[&str], data: &[u8]) -> Vec<u8> {
    let input = write_file(dir, "in.bin", data);
    let output = dir.join("sig.bin");
    let _ = std::fs::remove_file(&output);
    run_ok(
        tool(agent)
            .args(["--login", "--pin", SENTINEL_PIN, "--sign", "--id", &key.id])
            .args(args)
            .arg("-i")
            .arg(&input)
            .arg("-o")
            .arg(&output),
    );
    std::fs::read(&output).expect("signature file")
}

/// Verifies with `openssl dgst` against the key's certificate.
fn openssl_verifies(dir: &std::path::Path, key: &TestKey, digest: &str, extra: &[&str], data: &[u8], sig: &[u8]) {
    let cert = write_file(dir, "cert.pem", cert_pem(&key.cert_der).as_bytes());
    let pubkey = dir.join("pub.pem");
    run_ok(Command::new("openssl").args(["x509", "-pubkey", "-noout", "-in"]).arg(&cert).arg("-out").arg(&pubkey));
    let input = write_file(dir, "data.bin", data);
    let sigfile = write_file(dir, "sig.der", sig);
    let out = run_ok(
        Command::new("openssl")
            .args(["dgst", digest])
            .args(extra)
            .arg("-verify")
            .arg(&pubkey)
            .arg("-signature")
            .arg(&sigfile)
            .arg(&input),
    );
    assert!(stdout(&out).contains("Verified OK"), "{}", stdout(&out));
}

/// The DigestInfo of `data` as OpenSSL builds it (`openssl dgst -binary` then
/// `openssl pkeyutl -pkeyopt digest:` would hide it; `openssl asn1parse -genconf` writes the DER
/// from a description), so the module's DER parser is checked against another encoder.
fn digest_info_from_openssl(dir: &std::path::Path, hash_flag: &str, data: &[u8]) -> Vec<u8> {
    let input = write_file(dir, "to-hash.bin", data);
    let out = run_ok(Command::new("openssl").args(["dgst", hash_flag, "-r"]).arg(&input));
    let hex = stdout(&out).split_whitespace().next().unwrap_or_default().to_string();
    let name = hash_flag.trim_start_matches('-');
    let conf = format!(
        "asn1=SEQUENCE:digest_info\n[digest_info]\nalgorithm=SEQUENCE:alg\ndigest=FORMAT:HEX,OCTETSTRING:{hex}\n\
         [alg]\nalgorithm=OID:{name}\nparameter=NULL\n"
    );
    let conf = write_file(dir, "digest-info.cnf", conf.as_bytes());
    let der = dir.join("digest-info.der");
    run_ok(Command::new("openssl").args(["asn1parse", "-genconf"]).arg(&conf).arg("-noout").arg("-out").arg(&der));
    std::fs::read(der).expect("DigestInfo written by openssl")
}

#[test]
fn every_mechanism_signs_and_openssl_verifies() {
    let (agent, token) = agent_with_token(&ALL, &[]);
    let dir = tempfile::tempdir().unwrap();
    let data = b"the contract, version 7";
    let fmt = ["--signature-format", "openssl"];

    let p256 = token.key(KeyAlgorithm::P256);
    let sig = sign(&agent, dir.path(), p256, &[&["-m", "ECDSA-SHA256"][..], &fmt].concat(), data);
    openssl_verifies(dir.path(), p256, "-sha256", &[], data, &sig);

    let digest = ukey_api::HashAlg::Sha256.digest(data);
    let sig = sign(&agent, dir.path(), p256, &[&["-m", "ECDSA"][..], &fmt].concat(), &digest);
    openssl_verifies(dir.path(), p256, "-sha256", &[], data, &sig);

    let p384 = token.key(KeyAlgorithm::P384);
    let sig = sign(&agent, dir.path(), p384, &[&["-m", "ECDSA-SHA384"][..], &fmt].concat(), data);
    openssl_verifies(dir.path(), p384, "-sha384", &[], data, &sig);

    let rsa = token.key(KeyAlgorithm::Rsa { bits: 2048 });
    let sig = sign(&agent, dir.path(), rsa, &["-m", "SHA256-RSA-PKCS"], data);
    assert_eq!(sig.len(), 256);
    openssl_verifies(dir.path(), rsa, "-sha256", &[], data, &sig);

    let sig =
        sign(&agent, dir.path(), rsa, &["-m", "SHA256-RSA-PKCS-PSS", "--mgf", "MGF1-SHA256", "--salt-len", "32"], data);
    let pss = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"];
    openssl_verifies(dir.path(), rsa, "-sha256", &pss, data, &sig);

    let sig = sign(
        &agent,
        dir.path(),
        rsa,
        &["-m", "RSA-PKCS-PSS", "--hash-algorithm", "SHA256", "--mgf", "MGF1-SHA256", "--salt-len", "32"],
        &digest,
    );
    openssl_verifies(dir.path(), rsa, "-sha256", &pss, data, &sig);

    // CKM_RSA_PKCS over a DigestInfo the program built, of SHA-1 and SHA-512 (DER from openssl's
    // own encoder), and the hashing SHA1/SHA512-RSA-PKCS mechanisms.
    for (hash, name) in [(ukey_api::HashAlg::Sha1, "-sha1"), (ukey_api::HashAlg::Sha512, "-sha512")] {
        let info = digest_info_from_openssl(dir.path(), name, data);
        assert_eq!(info.len(), hash.output_len() + if hash == ukey_api::HashAlg::Sha1 { 15 } else { 19 });
        let sig = sign(&agent, dir.path(), rsa, &["-m", "RSA-PKCS"], &info);
        openssl_verifies(dir.path(), rsa, name, &[], data, &sig);
        let hashing = format!("{}-RSA-PKCS", name.trim_start_matches('-').to_uppercase());
        let sig = sign(&agent, dir.path(), rsa, &["-m", &hashing], data);
        openssl_verifies(dir.path(), rsa, name, &[], data, &sig);
    }
    // Input that is no DigestInfo is refused, not signed raw.
    let junk = write_file(dir.path(), "junk.bin", &[0x42; 35]);
    let out = tool(&agent)
        .args(["--login", "--pin", SENTINEL_PIN, "--sign", "-m", "RSA-PKCS", "--id", &rsa.id, "-i"])
        .arg(&junk)
        .arg("-o")
        .arg(dir.path().join("junk.sig"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "raw RSA over arbitrary bytes is not offered");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CKR_DATA_INVALID"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SM2 through the vendor mechanism CKM_SM3_SM2_APPID1 (swpkcs11.h): raw r || s over
    // SM3(Z || M) with the GM/T 0009 default id.
    let sm2 = token.key(KeyAlgorithm::Sm2);
    let raw = sign(&agent, dir.path(), sm2, &["-m", "0x80008102"], data);
    assert_eq!(raw.len(), 64);
    let der = ukey_api::crypto::sigenc::raw_to_der(&raw, 32).unwrap();
    openssl_verifies(dir.path(), sm2, "-sm3", &["-sigopt", "distid:1234567812345678"], data, &der);

    // A PIN given by the program is forwarded: no dialog was shown for any of these.
    assert!(agent.dialogs().is_empty(), "{:?}", agent.dialogs());
    assert!(!agent.log().contains(SENTINEL_PIN), "the forwarded PIN never reaches the agent's log");
}

#[test]
fn a_refused_dialog_fails_the_login_and_nothing_is_signed() {
    let (agent, token) = agent_with_token(&[KeyAlgorithm::P256], &[]);
    agent.script(&["cancel"]);
    let dir = tempfile::tempdir().unwrap();
    let input = write_file(dir.path(), "in.bin", b"data");
    let out = tool(&agent)
        .args(["--login", "--sign", "-m", "ECDSA-SHA256", "--id", &token.keys[0].id, "-i"])
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("sig"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CKR_FUNCTION_CANCELED"), "the holder's refusal reaches the program: {err}");
    assert!(!dir.path().join("sig").exists());
}

#[test]
fn without_an_agent_there_are_no_tokens_and_a_warning_says_why() {
    require("pkcs11-tool", "opensc");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let out = Command::new("pkcs11-tool")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("XDG_RUNTIME_DIR", &run)
        .arg("--module")
        .arg(module_path())
        .args(["-L"])
        .output()
        .expect("run pkcs11-tool");
    // The module loads and answers (pkcs11-tool exits 1 on an empty slot list, by its own rule).
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No slots.") && !stdout(&out).contains("token"), "no token is invented: {err}");
    assert!(err.contains("ukey agent not reachable"), "one warning says the agent is not running: {err}");
    assert_eq!(err.matches("ukey agent not reachable").count(), 1, "said once: {err}");
}

#[test]
fn c_wait_for_slot_event_reports_a_carrier_that_appears() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let (agent, _token) = agent_with_token(&[KeyAlgorithm::P256], &[]);
    // `--test-hotplug` lists slots on each line read from stdin: once without waiting ("x" ends
    // that round), then after a blocking C_WaitForSlotEvent.
    let mut child = tool(&agent)
        .arg("--test-hotplug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pkcs11-tool");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        // Prompts end without a newline: read byte-wise chunks split on ':' and newlines.
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        while reader.read_until(b':', &mut buf).map(|n| n > 0).unwrap_or(false) {
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
            buf.clear();
        }
    });
    let mut seen = String::new();
    let mut wait_for = |needle: &str| {
        let until = Instant::now() + Duration::from_secs(30);
        while !seen.contains(needle) {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.push_str(&chunk),
                Err(_) => panic!("pkcs11-tool never printed {needle:?}: {seen}"),
            }
        }
        std::mem::take(&mut seen)
    };
    wait_for("x to exit:");
    stdin.write_all(b"x\n").unwrap();
    wait_for("x to exit:");
    stdin.write_all(b"\n").unwrap();
    wait_for("Calling C_WaitForSlotEvent:");
    // A second carrier appears while the program waits.
    soft_token(&soft::soft_dir(&agent), "Bob", &[]);
    let after = wait_for("x to exit:");
    assert!(after.contains("event on slot 0x2"), "the new carrier's slot is reported: {after}");
    assert!(after.contains("Bob"), "and listed: {after}");
    stdin.write_all(b"x\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
