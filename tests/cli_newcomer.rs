//! The newcomer path of issue 2 on a software token, through the real `ukey` binary and the real
//! `openssl`: create a token, generate a key, make a CSR, get it certified, import the
//! certificate, list it, sign, and verify both ways — for SM2 and for P-256.

mod common;

use common::{Env, SM2_ID, distid, openssl, openssl_ok};

/// Makes an OpenSSL CA of the given curve (`ca.key`, `ca.pem`) in the env dir.
fn make_ca(env: &Env, curve: &str) {
    let dir = env.dir.path();
    openssl_ok(
        dir,
        &["genpkey", "-algorithm", "EC", "-pkeyopt", &format!("ec_paramgen_curve:{curve}"), "-out", "ca.key"],
    );
    let d = distid();
    let mut args =
        vec!["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Test CA", "-days", "30", "-out", "ca.pem"];
    if curve == "SM2" {
        args.extend(["-sm3", "-sigopt", &d]);
    }
    openssl_ok(dir, &args);
}

/// The CA signs `req` into `out`.
fn issue(env: &Env, req: &str, out: &str, sm2: bool) {
    let d = distid();
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        req,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-out",
        out,
    ];
    if sm2 {
        args.extend(["-sm3", "-sigopt", &d, "-vfyopt", &d]);
    }
    openssl_ok(env.dir.path(), &args);
}

#[test]
fn sm2_from_token_to_openssl_and_back() {
    let env = Env::new();
    let dir = env.dir.path();
    env.create_token("Alice");

    // Key generation.
    let key = env.keygen("Alice", "sm2", "alice-sign");
    assert_eq!(key["algorithm"], "sm2");
    assert_eq!(key["label"], "alice-sign");
    assert!(key["uri"].as_str().unwrap().starts_with("pkcs11:"), "{key}");

    // The public key, for OpenSSL.
    env.run(&["pubkey", "--key", "alice-sign", "--out", env.path("pub.pem").to_str().unwrap()]).ok();
    let stdout_pem = env.run(&["pubkey", "--key", "alice-sign"]).ok().out();
    assert_eq!(std::fs::read_to_string(env.path("pub.pem")).unwrap(), stdout_pem);
    assert!(stdout_pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{stdout_pem}");

    // CSR, verified by OpenSSL with the GM/T 0009 id.
    env.run_pin(&["csr", "--key", "alice-sign", "--subject", "CN=Alice,O=Example Org,C=CN", "--out", "req.pem"])
        .ok()
        .no_secrets();
    let d = distid();
    let run = openssl_ok(dir, &["req", "-in", "req.pem", "-noout", "-verify", "-subject", "-vfyopt", &d]);
    assert!(run.out().contains("CN = Alice") || run.stderr.contains("CN = Alice"), "{}{}", run.out(), run.stderr);
    assert!(run.stderr.contains("verify OK"), "{}", run.stderr);
    // Another id must NOT verify it: the request really uses the GM/T id. (`openssl req -verify`
    // exits 0 either way; its message tells.)
    let wrong = openssl(dir, &["req", "-in", "req.pem", "-noout", "-verify", "-vfyopt", "distid:wrong-id"]);
    assert!(wrong.stderr.contains("verify failure"), "a CSR verified under another id: {}", wrong.stderr);

    // Certificate from an SM2 CA, imported and listed.
    make_ca(&env, "SM2");
    issue(&env, "req.pem", "alice.pem", true);
    let cert = env.path("alice.pem");
    let imported =
        env.run_pin(&["--json", "cert", "import", "--token", "Alice", cert.to_str().unwrap()]).ok().no_secrets().json();
    assert_eq!(imported["label"], "alice-sign", "the label defaults to the key's: {imported}");
    let certs = env.run(&["--json", "certs", "--token", "Alice"]).ok().json();
    let list = certs["certificates"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{certs}");
    assert_eq!(list[0]["has_private_key"], true);
    assert_eq!(list[0]["key_algorithm"], "sm2");
    assert!(list[0]["subject"].as_str().unwrap().contains("CN=Alice"), "{certs}");
    assert_eq!(list[0]["issuer"], "CN=Test CA");
    let human = env.run(&["certs"]).ok().out();
    assert!(human.contains("CN=Alice") && human.contains("alice-sign"), "{human}");
    let keys = env.run(&["--json", "keys"]).ok().json();
    assert!(keys["keys"][0]["certificate_subject"].as_str().unwrap().contains("CN=Alice"), "{keys}");
    // The key can now be named by its certificate's URI type too.
    let cert_uri = list[0]["uri"].as_str().unwrap();
    env.run(&["pubkey", "--key", cert_uri]).ok();

    // ukey signs, OpenSSL verifies (DER is the default).
    let msg = env.write("msg.txt", b"I agree to the terms.\n");
    env.run_pin(&[
        "sign",
        "--key",
        "alice-sign",
        "--in",
        msg.to_str().unwrap(),
        "--out",
        env.path("sig.der").to_str().unwrap(),
    ])
    .ok()
    .no_secrets();
    openssl_ok(dir, &["dgst", "-sm3", "-verify", "pub.pem", "-sigopt", &d, "-signature", "sig.der", "msg.txt"]);
    // ... and ukey verifies against the certificate.
    env.run(&[
        "verify",
        "--cert",
        cert.to_str().unwrap(),
        "--sig",
        env.path("sig.der").to_str().unwrap(),
        "--in",
        msg.to_str().unwrap(),
    ])
    .ok();

    // Signing stdin to stdout.
    let run = env
        .run_with(&["sign", "--key", "alice-sign"], &[("UKEY_PIN", common::USER_PIN)], Some(b"I agree to the terms.\n"))
        .ok()
        .no_secrets();
    std::fs::write(env.path("sig2.der"), &run.stdout).unwrap();
    openssl_ok(dir, &["dgst", "-sm3", "-verify", "pub.pem", "-sigopt", &d, "-signature", "sig2.der", "msg.txt"]);

    // OpenSSL cannot sign with the token's key, but its signatures with its own SM2 key verify
    // under ukey (both directions are covered with P-256 below and in cli_verify).

    // --format raw: 64 bytes r ‖ s; ukey verify takes it.
    env.run_pin(&[
        "sign",
        "--key",
        "alice-sign",
        "--in",
        msg.to_str().unwrap(),
        "--format",
        "raw",
        "--out",
        env.path("sig.raw").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(env.path("sig.raw")).unwrap().len(), 64);
    env.run(&[
        "verify",
        "--pubkey",
        env.path("pub.pem").to_str().unwrap(),
        "--sig",
        env.path("sig.raw").to_str().unwrap(),
        "--in",
        msg.to_str().unwrap(),
    ])
    .ok();

    // --id: a signature for another distinguishing id verifies with OpenSSL under that id only.
    env.run_pin(&[
        "sign",
        "--key",
        "alice-sign",
        "--id",
        "alice@example.org",
        "--in",
        msg.to_str().unwrap(),
        "--out",
        env.path("sig.id").to_str().unwrap(),
    ])
    .ok();
    openssl_ok(
        dir,
        &[
            "dgst",
            "-sm3",
            "-verify",
            "pub.pem",
            "-sigopt",
            "distid:alice@example.org",
            "-signature",
            "sig.id",
            "msg.txt",
        ],
    );
    assert_ne!(
        openssl(dir, &["dgst", "-sm3", "-verify", "pub.pem", "-sigopt", &d, "-signature", "sig.id", "msg.txt"]).code,
        0
    );
    env.run(&["verify", "--pubkey", "pub.pem", "--sig", "sig.id", "--in", "msg.txt", "--id", "alice@example.org"]).ok();
    env.run(&["verify", "--pubkey", "pub.pem", "--sig", "sig.id", "--in", "msg.txt"]).code(5);

    // --prehashed: sign the SM3(Z ‖ M) digest that `sign --json` reports; OpenSSL accepts the
    // result as a signature over the message.
    let json = env.run_pin(&["--json", "sign", "--key", "alice-sign", "--in", msg.to_str().unwrap()]).ok().json();
    let digest = json["digest"].as_str().unwrap().to_string();
    assert_eq!(json["sm2_id"], SM2_ID);
    let dfile = env.write("digest.hex", digest.as_bytes());
    env.run_pin(&[
        "sign",
        "--key",
        "alice-sign",
        "--prehashed",
        "--in",
        dfile.to_str().unwrap(),
        "--out",
        env.path("sig.pre").to_str().unwrap(),
    ])
    .ok();
    openssl_ok(dir, &["dgst", "-sm3", "-verify", "pub.pem", "-sigopt", &d, "-signature", "sig.pre", "msg.txt"]);
    env.run(&[
        "verify",
        "--pubkey",
        env.path("pub.pem").to_str().unwrap(),
        "--sig",
        env.path("sig.pre").to_str().unwrap(),
        "--in",
        dfile.to_str().unwrap(),
        "--prehashed",
    ])
    .ok();
    // --id with --prehashed is refused (the digest already holds Z).
    env.run_pin(&["sign", "--key", "alice-sign", "--prehashed", "--id", "x", "--in", dfile.to_str().unwrap()]).code(2);
}

#[test]
fn p256_both_directions() {
    let env = Env::new();
    let dir = env.dir.path();
    env.create_token("Bob");
    env.keygen("Bob", "p256", "bob");
    let pem = env.run(&["pubkey", "--key", "bob"]).ok().out();
    env.write("pub.pem", pem.as_bytes());
    let msg = env.write("msg", b"P-256 payload");

    // ukey → OpenSSL.
    env.run_pin(&["sign", "--key", "bob", "--in", msg.to_str().unwrap(), "--out", env.path("sig").to_str().unwrap()])
        .ok();
    openssl_ok(dir, &["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig", "msg"]);

    // CSR and an OpenSSL-issued certificate.
    env.run_pin(&["csr", "--key", "bob", "--subject", "CN=Bob", "--out", env.path("req.pem").to_str().unwrap()]).ok();
    let run = openssl_ok(dir, &["req", "-in", "req.pem", "-noout", "-verify"]);
    assert!(run.stderr.contains("verify OK"), "{}", run.stderr);
    make_ca(&env, "prime256v1");
    issue(&env, "req.pem", "bob.pem", false);
    env.run_pin(&["cert", "import", env.path("bob.pem").to_str().unwrap()]).ok();
    env.run(&[
        "verify",
        "--cert",
        env.path("bob.pem").to_str().unwrap(),
        "--sig",
        env.path("sig").to_str().unwrap(),
        "--in",
        msg.to_str().unwrap(),
    ])
    .ok();

    // OpenSSL → ukey: OpenSSL's own P-256 key signs, ukey verifies (and a wrong key does not).
    openssl_ok(dir, &["dgst", "-sha256", "-sign", "ca.key", "-out", "ossl.sig", "msg"]);
    openssl_ok(dir, &["pkey", "-in", "ca.key", "-pubout", "-out", "ca.pub"]);
    env.run(&[
        "verify",
        "--pubkey",
        env.path("ca.pub").to_str().unwrap(),
        "--sig",
        env.path("ossl.sig").to_str().unwrap(),
        "--in",
        msg.to_str().unwrap(),
    ])
    .ok();
    env.run(&[
        "verify",
        "--pubkey",
        env.path("pub.pem").to_str().unwrap(),
        "--sig",
        env.path("ossl.sig").to_str().unwrap(),
        "--in",
        msg.to_str().unwrap(),
    ])
    .code(5);

    // Prehashed with a digest from OpenSSL, raw format.
    let digest = openssl_ok(dir, &["dgst", "-sha256", "-binary", "msg"]).stdout;
    env.write("digest", &digest);
    env.run_pin(&[
        "sign",
        "--key",
        "bob",
        "--prehashed",
        "--in",
        env.path("digest").to_str().unwrap(),
        "--format",
        "raw",
        "--out",
        env.path("sig.raw").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(env.path("sig.raw")).unwrap().len(), 64);
    env.run(&[
        "verify",
        "--pubkey",
        env.path("pub.pem").to_str().unwrap(),
        "--sig",
        env.path("sig.raw").to_str().unwrap(),
        "--in",
        msg.to_str().unwrap(),
    ])
    .ok();
}

#[test]
fn sm2_openssl_signature_verifies_against_a_token_certificate_issuer_chain() {
    // OpenSSL → ukey for SM2 with a certificate: OpenSSL's SM2 CA key signs a message, ukey
    // verifies it with the CA certificate.
    let env = Env::new();
    let dir = env.dir.path();
    make_ca(&env, "SM2");
    env.write("msg", b"from openssl");
    let d = distid();
    openssl_ok(dir, &["dgst", "-sm3", "-sign", "ca.key", "-sigopt", &d, "-out", "sig", "msg"]);
    env.run(&[
        "verify",
        "--cert",
        env.path("ca.pem").to_str().unwrap(),
        "--sig",
        env.path("sig").to_str().unwrap(),
        "--in",
        env.path("msg").to_str().unwrap(),
    ])
    .ok();
}
