//! Bad input through the CLI: each gets a clear error with a documented exit code, and nothing
//! stored is lost.

mod common;

use common::{Env, openssl_ok};

#[test]
fn unknown_algorithm_lists_the_supported_ones() {
    let env = Env::new();
    env.create_token("T");
    let run = env.run_pin(&["keygen", "--token", "T", "--alg", "ed25519", "--label", "x"]).code(2);
    for alg in ["sm2", "p256", "p384", "rsa2048"] {
        assert!(run.stderr.contains(alg), "{}", run.stderr);
    }
    let err = env.run_pin(&["--json", "keygen", "--alg", "dsa", "--label", "x"]).code(2).json_error();
    assert_eq!(err["error"]["kind"], "Usage");
    let run = env.run_pin(&["sign", "--key", "x", "--alg", "md5-rsa"]).code(2);
    assert!(run.stderr.contains("sm2-sm3") && run.stderr.contains("rsa-pss-sha256"), "{}", run.stderr);
    // A mechanism that does not fit the key lists what the key can do.
    env.keygen("T", "sm2", "s");
    let run = env.run_pin(&["sign", "--key", "s", "--alg", "ecdsa-sha256", "--in", "/dev/null"]).code(1);
    assert!(run.stderr.contains("sm2-sm3"), "{}", run.stderr);
}

#[test]
fn certificate_matching_no_key_is_refused_and_nothing_is_written() {
    let env = Env::new();
    let dir = env.dir.path();
    env.create_token("T");
    env.keygen("T", "sm2", "mine");
    openssl_ok(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "other.key"]);
    openssl_ok(
        dir,
        &["req", "-x509", "-new", "-key", "other.key", "-subj", "/CN=Stranger", "-days", "1", "-out", "other.pem"],
    );
    let run = env.run_pin(&["cert", "import", "--token", "T", "other.pem"]).code(1).no_secrets();
    assert!(run.stderr.contains("matches no key"), "{}", run.stderr);
    assert!(run.stderr.contains("mine"), "the error should list the keys there: {}", run.stderr);
    let certs = env.run(&["--json", "certs"]).ok().json();
    assert_eq!(certs["certificates"].as_array().unwrap().len(), 0, "{certs}");
    // Not a certificate at all: the file is named.
    env.write("junk.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let run = env.run_pin(&["cert", "import", "junk.pem"]).code(1);
    assert!(run.stderr.contains("junk.pem"), "{}", run.stderr);
}

#[test]
fn ambiguous_names_list_uris_and_the_uri_then_works() {
    let env = Env::new();
    env.create_token("A");
    env.create_token("B");
    let a = env.keygen("A", "p256", "sign");
    env.keygen("B", "p256", "sign");

    // --token is required in practice when there are two tokens.
    let err = env.run_pin(&["--json", "keygen", "--alg", "p256", "--label", "x"]).code(4).json_error();
    assert_eq!(err["error"]["kind"], "Ambiguous");
    assert_eq!(err["error"]["candidates"].as_array().unwrap().len(), 2, "{err}");

    // The key label is on both tokens.
    let run = env.run(&["pubkey", "--key", "sign"]).code(4);
    assert!(run.stderr.contains("pkcs11:"), "{}", run.stderr);
    let err = env.run(&["--json", "pubkey", "--key", "sign"]).code(4).json_error();
    let candidates: Vec<String> =
        err["error"]["candidates"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(candidates.len(), 2, "{err}");
    assert!(candidates.contains(&a["uri"].as_str().unwrap().to_string()), "{candidates:?} vs {a}");
    // Any candidate URI names exactly one key; so does --token.
    for uri in &candidates {
        env.run(&["pubkey", "--key", uri]).ok();
    }
    env.run(&["pubkey", "--key", "sign", "--token", "A"]).ok();
    // The key's hex id works too.
    env.run(&["pubkey", "--key", a["id"].as_str().unwrap(), "--token", "A"]).ok();
}

#[test]
fn nothing_found_lists_what_exists() {
    let env = Env::new();
    // No tokens at all: say how to create one.
    let run = env.run(&["pubkey", "--key", "x"]).code(4);
    assert!(run.stderr.contains("no keys") || run.stderr.contains("token init"), "{}", run.stderr);
    let out = env.run(&["tokens"]).ok().out();
    assert!(out.contains("ukey token init --soft"), "{out}");
    env.create_token("Real");
    env.keygen("Real", "p256", "present");
    let run = env.run(&["pubkey", "--key", "absent"]).code(4);
    assert!(run.stderr.contains("present"), "{}", run.stderr);
    let run = env.run(&["keys", "--token", "Imaginary"]).code(4);
    assert!(run.stderr.contains("Real"), "{}", run.stderr);
    assert_eq!(env.run(&["--json", "certs", "--token", "Imaginary"]).code(4).json_error()["error"]["kind"], "NotFound");
}

/// The token file(s) of the soft store.
fn token_files(env: &Env) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(env.soft_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "token"))
        .collect();
    files.sort();
    files
}

#[test]
fn corrupt_token_file_is_named_and_left_untouched() {
    let env = Env::new();
    env.create_token("T");
    env.keygen("T", "p256", "k");
    let files = token_files(&env);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let original = std::fs::read(file).unwrap();
    for damage in [&original[..original.len() / 2], b"garbage that is not a token" as &[u8]] {
        std::fs::write(file, damage).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        for args in [&["keys", "--token", "T"][..], &["tokens"][..], &["keys"][..]] {
            let run = env.run_pin(args);
            let text = format!("{}{}", run.out(), run.stderr);
            assert!(text.contains(name), "`ukey {args:?}` should name {name}: {text}");
        }
        let run = env.run_pin(&["sign", "--key", "k", "--in", "/dev/null"]);
        assert_ne!(run.code, 0);
        assert!(run.stderr.contains(name), "{}", run.stderr);
        let run = env.run_pin(&["keygen", "--token", "T", "--alg", "p256", "--label", "k2"]);
        assert_ne!(run.code, 0);
        assert_eq!(std::fs::read(file).unwrap(), damage, "the damaged file was changed");
    }
    // Restored, everything works again.
    std::fs::write(file, &original).unwrap();
    env.run_pin(&["sign", "--key", "k", "--in", "/dev/null", "--out", "/dev/null"]).ok();
}

#[test]
fn bad_config_and_paths_are_explained() {
    let env = Env::new();
    let cfg = env.write("bad.toml", b"[soft\n");
    let run = env.run(&["--config", cfg.to_str().unwrap(), "tokens"]).code(1);
    assert!(run.stderr.contains("bad.toml"), "{}", run.stderr);
    let run = env.run(&["--config", "missing.toml", "tokens"]).code(1);
    assert!(run.stderr.contains("missing.toml"), "{}", run.stderr);
    // The config file can move the soft store.
    let cfg = env.write("good.toml", b"[soft]\ndir = \"elsewhere\"\n");
    let mut cmd = env.ukey();
    cmd.env_remove("UKEY_SOFT_DIR").env("UKEY_SO_PIN", common::SO_PIN).env("UKEY_NEW_PIN", common::USER_PIN).args([
        "--config",
        cfg.to_str().unwrap(),
        "token",
        "init",
        "--soft",
        "--label",
        "C",
    ]);
    common::run_command(cmd, None).ok();
    assert!(env.path("elsewhere").is_dir());
    assert!(!env.soft_dir().exists(), "the flag/env default was used despite the config file");
    // Unknown commands and options are usage errors.
    env.run(&["frobnicate"]).code(2);
    env.run(&["tokens", "--frob"]).code(2);
    env.run(&["verify", "--cert", "a", "--pubkey", "b", "--sig", "c"]).code(2);
    env.run(&["token", "init", "--label", "x"]).code(2);
}
