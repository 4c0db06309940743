//! `ukey verify` against signatures and keys made by OpenSSL: SM2 (with the GM/T 0009 id and with
//! OpenSSL's empty default id), P-256, certificates, prehashed input, raw input, bad input.

mod common;

use common::{Env, distid, openssl_ok};

/// An OpenSSL key pair in the env dir: `NAME.key`, `NAME.pub`.
fn openssl_key(env: &Env, name: &str, curve: &str) {
    let dir = env.dir.path();
    openssl_ok(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            &format!("{name}.key"),
        ],
    );
    openssl_ok(dir, &["pkey", "-in", &format!("{name}.key"), "-pubout", "-out", &format!("{name}.pub")]);
}

#[test]
fn openssl_sm2_signature_verifies_with_ukey() {
    let env = Env::new();
    let dir = env.dir.path();
    openssl_key(&env, "sm2", "SM2");
    env.write("msg", b"the quick brown fox");
    let d = distid();
    openssl_ok(dir, &["dgst", "-sm3", "-sign", "sm2.key", "-sigopt", &d, "-out", "sig", "msg"]);
    let pubkey = env.path("sm2.pub");
    let (p, sig, msg) = (pubkey.to_str().unwrap(), env.path("sig"), env.path("msg"));
    let run = env.run(&["verify", "--pubkey", p, "--sig", sig.to_str().unwrap(), "--in", msg.to_str().unwrap()]).ok();
    assert!(run.out().contains("Signature OK"), "{}", run.out());
    let json = env
        .run(&["--json", "verify", "--pubkey", p, "--sig", sig.to_str().unwrap(), "--in", msg.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["mechanism"], "sm2-sm3");
    assert_eq!(json["sm2_id"], common::SM2_ID);

    // The message from stdin works too.
    env.run_with(&["verify", "--pubkey", p, "--sig", sig.to_str().unwrap()], &[], Some(b"the quick brown fox")).ok();

    // A changed message does not verify: exit 5, and the message names the SM2 id.
    let tampered = env.write("tampered", b"the quick brown fox!");
    let run =
        env.run(&["verify", "--pubkey", p, "--sig", sig.to_str().unwrap(), "--in", tampered.to_str().unwrap()]).code(5);
    assert!(run.stderr.contains("does NOT verify"), "{}", run.stderr);
    let err = env
        .run(&["--json", "verify", "--pubkey", p, "--sig", sig.to_str().unwrap(), "--in", tampered.to_str().unwrap()])
        .code(5)
        .json_error();
    assert_eq!(err["error"]["kind"], "BadSignature");
}

#[test]
fn sm2_ids_must_agree() {
    let env = Env::new();
    let dir = env.dir.path();
    openssl_key(&env, "sm2", "SM2");
    env.write("msg", b"hello");
    // OpenSSL 3.0 without distid uses an EMPTY id.
    openssl_ok(dir, &["dgst", "-sm3", "-sign", "sm2.key", "-out", "sig-empty", "msg"]);
    openssl_ok(
        dir,
        &["dgst", "-sm3", "-sign", "sm2.key", "-sigopt", "distid:alice@example", "-out", "sig-alice", "msg"],
    );
    let p = env.path("sm2.pub");
    let p = p.to_str().unwrap();
    let msg = env.path("msg");
    let msg = msg.to_str().unwrap();
    let empty = env.path("sig-empty");
    let run = env.run(&["verify", "--pubkey", p, "--sig", empty.to_str().unwrap(), "--in", msg]).code(5);
    assert!(run.stderr.contains("--id"), "the error should say how to give the id: {}", run.stderr);
    env.run(&["verify", "--pubkey", p, "--sig", empty.to_str().unwrap(), "--in", msg, "--id", ""]).ok();
    let alice = env.path("sig-alice");
    env.run(&["verify", "--pubkey", p, "--sig", alice.to_str().unwrap(), "--in", msg, "--id", "alice@example"]).ok();
    env.run(&["verify", "--pubkey", p, "--sig", alice.to_str().unwrap(), "--in", msg]).code(5);
}

#[test]
fn openssl_p256_signature_verifies_with_ukey_also_prehashed() {
    let env = Env::new();
    let dir = env.dir.path();
    openssl_key(&env, "p256", "prime256v1");
    env.write("msg", b"payload for p-256");
    openssl_ok(dir, &["dgst", "-sha256", "-sign", "p256.key", "-out", "sig", "msg"]);
    let (p, sig, msg) = (env.path("p256.pub"), env.path("sig"), env.path("msg"));
    let (p, sig, msg) = (p.to_str().unwrap(), sig.to_str().unwrap(), msg.to_str().unwrap());
    let json = env.run(&["--json", "verify", "--pubkey", p, "--sig", sig, "--in", msg]).ok().json();
    assert_eq!(json["mechanism"], "ecdsa-sha256");
    assert!(json.get("sm2_id").is_none());

    // The digest, raw and as hex, with --prehashed.
    let digest = openssl_ok(dir, &["dgst", "-sha256", "-binary", "msg"]).stdout;
    let raw = env.write("digest.bin", &digest);
    env.run(&["verify", "--pubkey", p, "--sig", sig, "--in", raw.to_str().unwrap(), "--prehashed"]).ok();
    let hexfile = env.write("digest.hex", format!("{}\n", hex::encode(&digest)).as_bytes());
    env.run(&["verify", "--pubkey", p, "--sig", sig, "--in", hexfile.to_str().unwrap(), "--prehashed"]).ok();
    // A digest of the wrong length is refused with what is expected.
    let short = env.write("short", &digest[..20]);
    let run = env.run(&["verify", "--pubkey", p, "--sig", sig, "--in", short.to_str().unwrap(), "--prehashed"]).code(1);
    assert!(run.stderr.contains("32-byte"), "{}", run.stderr);
    // --id makes no sense for ECDSA.
    env.run(&["verify", "--pubkey", p, "--sig", sig, "--in", msg, "--id", "x"]).code(2);
}

#[test]
fn verifies_with_a_certificate() {
    let env = Env::new();
    let dir = env.dir.path();
    openssl_key(&env, "p256", "prime256v1");
    openssl_ok(
        dir,
        &["req", "-new", "-x509", "-key", "p256.key", "-subj", "/CN=Verifier Test", "-days", "2", "-out", "cert.pem"],
    );
    env.write("msg", b"signed by a certificate holder");
    openssl_ok(dir, &["dgst", "-sha256", "-sign", "p256.key", "-out", "sig", "msg"]);
    let (c, sig, msg) = (env.path("cert.pem"), env.path("sig"), env.path("msg"));
    let run = env
        .run(&["verify", "--cert", c.to_str().unwrap(), "--sig", sig.to_str().unwrap(), "--in", msg.to_str().unwrap()])
        .ok();
    assert!(run.out().contains("CN=Verifier Test"), "{}", run.out());
    // DER certificate too.
    openssl_ok(dir, &["x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der"]);
    let der = env.path("cert.der");
    env.run(&[
        "verify",
        "--cert",
        der.to_str().unwrap(),
        "--sig",
        sig.to_str().unwrap(),
        "--in",
        msg.to_str().unwrap(),
    ])
    .ok();
}

#[test]
fn bad_verify_input_gets_clear_errors() {
    let env = Env::new();
    let garbage = env.write("garbage", b"not a key at all");
    let msg = env.write("msg", b"m");
    let g = garbage.to_str().unwrap();
    let m = msg.to_str().unwrap();
    // Not a key: exit 1, the file is named.
    let run = env.run(&["verify", "--pubkey", g, "--sig", m, "--in", m]).code(1);
    assert!(run.stderr.contains(g), "{}", run.stderr);
    // No signer given: usage.
    env.run(&["verify", "--sig", m, "--in", m]).code(2);
    // Unknown mechanism lists the supported ones.
    let run = env.run(&["verify", "--pubkey", g, "--sig", m, "--alg", "md5"]).code(2);
    assert!(run.stderr.contains("sm2-sm3") && run.stderr.contains("ecdsa-sha256"), "{}", run.stderr);
    // A missing file is named.
    let run = env.run(&["verify", "--pubkey", "/nonexistent/key.pem", "--sig", m, "--in", m]).code(1);
    assert!(run.stderr.contains("/nonexistent/key.pem"), "{}", run.stderr);
    // JSON errors go to stderr as {"error": {...}}.
    let err = env.run(&["--json", "verify", "--pubkey", g, "--sig", m, "--in", m]).code(1).json_error();
    assert_eq!(err["error"]["kind"], "InvalidInput");
}
