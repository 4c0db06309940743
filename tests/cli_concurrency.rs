//! Several `ukey` processes on one software token at once: every process succeeds or fails with
//! a clean error, and afterwards the token is consistent (every key a successful keygen reported
//! is listed, nothing else, and signing still works).

mod common;

use std::collections::BTreeSet;
use std::process::Child;

use common::{Env, USER_PIN, openssl_ok};

#[test]
fn concurrent_sign_and_keygen_keep_the_token_consistent() {
    let env = Env::new();
    env.create_token("Shared");
    env.keygen("Shared", "p256", "base");
    let pem = env.run(&["pubkey", "--key", "base"]).ok().out();
    env.write("base.pub", pem.as_bytes());
    env.write("msg", b"signed concurrently");

    const SIGNERS: usize = 4;
    const KEYGENS: usize = 4;
    let spawn = |args: Vec<String>| -> Child {
        let mut cmd = env.ukey();
        cmd.args(&args).env("UKEY_PIN", USER_PIN);
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        cmd.spawn().expect("start ukey")
    };
    let mut children: Vec<(String, Child)> = Vec::new();
    for i in 0..KEYGENS.max(SIGNERS) {
        if i < KEYGENS {
            let label = format!("k{i}");
            children.push((
                format!("keygen {label}"),
                spawn(
                    ["--json", "keygen", "--token", "Shared", "--alg", "p256", "--label", &label]
                        .map(String::from)
                        .to_vec(),
                ),
            ));
        }
        if i < SIGNERS {
            let out = format!("sig{i}");
            children.push((
                format!("sign {out}"),
                spawn(["sign", "--key", "base", "--in", "msg", "--out", &out].map(String::from).to_vec()),
            ));
        }
    }

    let mut generated = BTreeSet::new();
    for (what, child) in children {
        let out = child.wait_with_output().expect("wait for ukey");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
        assert!(!stderr.contains(USER_PIN), "{what} leaked the PIN");
        match out.status.code() {
            Some(0) => {
                if let Some(label) = what.strip_prefix("keygen ") {
                    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("keygen JSON");
                    assert_eq!(json["label"], label);
                    generated.insert(label.to_string());
                } else {
                    let sig = what.strip_prefix("sign ").unwrap();
                    openssl_ok(env.dir.path(), &["dgst", "-sha256", "-verify", "base.pub", "-signature", sig, "msg"]);
                }
            }
            // A clean refusal (busy) is allowed; it must say so in words, not crash.
            Some(1) => {
                assert!(stderr.starts_with("ukey: ") && stderr.contains("busy"), "{what} failed unclearly: {stderr}")
            }
            other => panic!("{what} ended with {other:?}: {stderr}"),
        }
    }

    // The token is consistent: exactly the reported keys (plus the base key) are there.
    let keys = env.run(&["--json", "keys", "--token", "Shared"]).ok().json();
    let listed: BTreeSet<String> =
        keys["keys"].as_array().unwrap().iter().map(|k| k["label"].as_str().unwrap().to_string()).collect();
    let mut expected = generated.clone();
    expected.insert("base".into());
    assert_eq!(listed, expected, "{keys}");
    assert!(keys["problems"].as_array().unwrap().is_empty(), "{keys}");
    assert!(!generated.is_empty(), "no keygen succeeded at all");
    // Every generated key signs.
    for label in &generated {
        env.run_pin(&["sign", "--key", label, "--in", "msg", "--out", "/dev/null"]).ok();
    }
    let status = env.run(&["--json", "pin", "status"]).ok().json();
    assert_eq!(status["tokens"][0]["pin"]["user"]["retries_left"], 6, "{status}");
}
