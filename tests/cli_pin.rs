//! The PIN lifecycle through the CLI on a software token: wrong PIN says tries left, six wrong
//! tries lock it even for the right PIN, the SO PIN unblocks it; change; where PINs may come from.

mod common;

use common::{Env, SO_PIN, USER_PIN};

const NEW_PIN: &str = "new-pin-2468";

fn sign_with(env: &Env, pin: &str) -> common::Run {
    env.write("m", b"message");
    env.run_with(&["sign", "--key", "k", "--in", "m", "--out", "s"], &[("UKEY_PIN", pin)], None)
}

fn token_with_key(env: &Env) {
    env.create_token("T");
    env.keygen("T", "p256", "k");
}

#[test]
fn six_wrong_pins_lock_and_the_so_pin_unblocks() {
    let env = Env::new();
    token_with_key(&env);
    for left in (1..=5).rev() {
        let run = sign_with(&env, "000000").code(3).no_secrets();
        assert!(run.stderr.contains(&format!("{left} tr")), "after a wrong PIN: {}", run.stderr);
    }
    let err = env
        .run_with(&["--json", "sign", "--key", "k", "--in", "m"], &[("UKEY_PIN", "000000")], None)
        .code(3)
        .no_secrets()
        .json_error();
    assert!(matches!(err["error"]["kind"].as_str(), Some("WrongPin" | "PinLocked")), "{err}");

    // Locked: the right PIN is refused too, and the message says how to unblock.
    let run = sign_with(&env, USER_PIN).code(3).no_secrets();
    assert!(run.stderr.contains("locked") && run.stderr.contains("ukey pin unblock"), "{}", run.stderr);
    let status = env.run(&["--json", "pin", "status", "--token", "T"]).ok().json();
    assert_eq!(status["tokens"][0]["pin"]["user"]["locked"], true, "{status}");
    assert!(env.run(&["pin", "status"]).ok().out().contains("LOCKED"));

    // A wrong SO PIN does not unblock, and says so.
    let run = env
        .run_with(&["pin", "unblock", "--token", "T"], &[("UKEY_SO_PIN", "wrong-so"), ("UKEY_NEW_PIN", NEW_PIN)], None)
        .code(3)
        .no_secrets();
    assert!(run.stderr.contains("SO PIN"), "{}", run.stderr);

    // The SO PIN unblocks and sets the new user PIN.
    let json = env
        .run_with(
            &["--json", "pin", "unblock", "--token", "T"],
            &[("UKEY_SO_PIN", SO_PIN), ("UKEY_NEW_PIN", NEW_PIN)],
            None,
        )
        .ok()
        .no_secrets()
        .json();
    assert_eq!(json["result"], "unblocked");
    assert_eq!(json["pin"]["user"]["locked"], false);
    sign_with(&env, NEW_PIN).ok().no_secrets();
    sign_with(&env, USER_PIN).code(3);
}

#[test]
fn change_pin_then_old_one_fails() {
    let env = Env::new();
    token_with_key(&env);
    // A wrong current PIN does not change anything.
    env.run_with(&["pin", "change"], &[("UKEY_PIN", "nope-nope"), ("UKEY_NEW_PIN", NEW_PIN)], None)
        .code(3)
        .no_secrets();
    sign_with(&env, USER_PIN).ok();
    let run = env
        .run_with(&["pin", "change", "--token", "T"], &[("UKEY_PIN", USER_PIN), ("UKEY_NEW_PIN", NEW_PIN)], None)
        .ok()
        .no_secrets();
    assert!(run.out().contains("changed"), "{}", run.out());
    sign_with(&env, USER_PIN).code(3);
    sign_with(&env, NEW_PIN).ok();
    // The SO PIN can be changed too.
    env.run_with(&["pin", "change", "--so"], &[("UKEY_SO_PIN", SO_PIN), ("UKEY_NEW_PIN", "other-so-pin")], None)
        .ok()
        .no_secrets();
    env.run_with(&["pin", "unblock"], &[("UKEY_SO_PIN", SO_PIN), ("UKEY_NEW_PIN", USER_PIN)], None).code(3);
    env.run_with(&["pin", "unblock"], &[("UKEY_SO_PIN", "other-so-pin"), ("UKEY_NEW_PIN", USER_PIN)], None).ok();
    sign_with(&env, USER_PIN).ok();
}

#[test]
fn pin_sources_and_refusals() {
    let env = Env::new();
    token_with_key(&env);
    env.write("m", b"message");

    // No PIN and no terminal: a clear error naming the three ways.
    let run = env.run(&["sign", "--key", "k", "--in", "m"]).code(3);
    for way in ["terminal", "--pin-file", "UKEY_PIN"] {
        assert!(run.stderr.contains(way), "the error should name {way}: {}", run.stderr);
    }
    assert_eq!(
        env.run(&["--json", "sign", "--key", "k", "--in", "m"]).code(3).json_error()["error"]["kind"],
        "PinUnavailable"
    );

    // An empty PIN is refused before it reaches the token (no try spent).
    let run = env.run_with(&["sign", "--key", "k", "--in", "m"], &[("UKEY_PIN", "")], None).code(3);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
    let status = env.run(&["--json", "pin", "status"]).ok().json();
    assert_eq!(status["tokens"][0]["pin"]["user"]["retries_left"], 6, "an empty PIN spent a try: {status}");

    // --pin-file, with a trailing newline; it wins over the variable.
    let file = env.write("pin.txt", format!("{USER_PIN}\n").as_bytes());
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let run = env
        .run_with(
            &["sign", "--key", "k", "--in", "m", "--out", "s", "--pin-file", "pin.txt"],
            &[("UKEY_PIN", "wrong")],
            None,
        )
        .ok()
        .no_secrets();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    // A PIN file others can read works, with a warning.
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let run = env.run(&["sign", "--key", "k", "--in", "m", "--out", "s", "--pin-file", "pin.txt"]).ok();
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
    // A missing PIN file is named.
    let run = env.run(&["sign", "--key", "k", "--in", "m", "--pin-file", "nonexistent-pin"]).code(1);
    assert!(run.stderr.contains("nonexistent-pin"), "{}", run.stderr);

    // PINs are never accepted as plain arguments.
    env.run(&["sign", "--key", "k", "--pin", USER_PIN]).code(2).no_secrets();

    // A new PIN that is empty is refused and the old PIN still works.
    env.run_with(&["pin", "change"], &[("UKEY_PIN", USER_PIN), ("UKEY_NEW_PIN", "")], None).code(3);
    env.run_with(&["sign", "--key", "k", "--in", "m", "--out", "s"], &[("UKEY_PIN", USER_PIN)], None).ok();
}

#[test]
fn reinitialising_needs_the_so_pin_and_erases_the_token() {
    let env = Env::new();
    token_with_key(&env);
    // A wrong SO PIN changes nothing.
    env.run_with(
        &["token", "init", "--token", "T", "--label", "Fresh"],
        &[("UKEY_SO_PIN", "wrong-so"), ("UKEY_NEW_PIN", NEW_PIN)],
        None,
    )
    .code(3)
    .no_secrets();
    assert_eq!(env.run(&["--json", "keys", "--token", "T"]).ok().json()["keys"].as_array().unwrap().len(), 1);
    // The right one wipes the keys, sets the label and the new user PIN.
    let json = env
        .run_with(
            &["--json", "token", "init", "--token", "T", "--label", "Fresh"],
            &[("UKEY_SO_PIN", SO_PIN), ("UKEY_NEW_PIN", NEW_PIN)],
            None,
        )
        .ok()
        .no_secrets()
        .json();
    assert_eq!(json["label"], "Fresh", "{json}");
    let keys = env.run(&["--json", "keys", "--token", "Fresh"]).ok().json();
    assert!(keys["keys"].as_array().unwrap().is_empty(), "{keys}");
    env.run(&["keys", "--token", "T"]).code(4);
    env.run_with(&["keygen", "--token", "Fresh", "--alg", "p256", "--label", "k"], &[("UKEY_PIN", USER_PIN)], None)
        .code(3);
    env.run_with(&["keygen", "--token", "Fresh", "--alg", "p256", "--label", "k"], &[("UKEY_PIN", NEW_PIN)], None).ok();
}
