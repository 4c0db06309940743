//! PIN lifecycle of the soft token: tries left, lockout, SO unblock, SO lockout and
//! re-initialisation, PIN rules, and PINs never leaking into errors or Debug output.

mod common;

use common::*;
use ukey_api::{Carrier, Credential, Error, InitRequest, Pin, PinRole};
use ukey_soft::{KdfParams, SoftDriver};

fn retries(token: &impl Carrier, role: PinRole) -> u32 {
    let state = token.pin_state().unwrap();
    let status = if role == PinRole::User { state.user } else { state.so };
    status.retries_left.unwrap()
}

#[test]
fn wrong_pin_says_tries_left_and_right_pin_resets_the_counter() {
    let fx = Fixture::new();
    let token = fx.token("alice");
    assert_eq!(retries(&token, PinRole::User), 6);
    for left in (4..=5).rev() {
        match token.verify_pin(PinRole::User, &cred("wrong-pin")) {
            Err(Error::WrongPin { role: PinRole::User, retries_left: Some(n), .. }) => assert_eq!(n, left),
            other => panic!("expected WrongPin with {left} tries left, got {other:?}"),
        }
    }
    let err = token.verify_pin(PinRole::User, &cred("wrong-pin")).unwrap_err();
    assert!(err.to_string().contains("3 tries left"), "{err}");
    let state = token.pin_state().unwrap();
    assert!(state.user.count_low && !state.user.locked && !state.user.final_try);
    assert_eq!(state.user.default_pin, Some(false));
    token.verify_pin(PinRole::User, &user()).unwrap();
    assert_eq!(retries(&token, PinRole::User), 6);
    assert_eq!(retries(&token, PinRole::So), 6, "user tries do not touch the SO counter");
}

#[test]
fn six_wrong_pins_lock_even_the_right_pin_and_so_unblock_restores_it() {
    let fx = Fixture::new();
    let token = fx.token("bob");
    for _ in 0..5 {
        assert!(matches!(token.verify_pin(PinRole::User, &cred("0000")), Err(Error::WrongPin { .. })));
    }
    assert!(token.pin_state().unwrap().user.final_try);
    match token.verify_pin(PinRole::User, &cred("0000")) {
        Err(Error::WrongPin { retries_left: Some(0), .. }) => {}
        other => panic!("the sixth wrong PIN should report 0 tries left, got {other:?}"),
    }
    assert!(token.pin_state().unwrap().user.locked);
    let err = token.verify_pin(PinRole::User, &user()).unwrap_err();
    assert!(matches!(err, Error::PinLocked { role: PinRole::User }), "{err:?}");
    assert!(err.to_string().contains("ukey pin unblock"), "{err}");
    // A locked PIN refuses every use, not only verification.
    let err = token.write_data(&data("x"), &user()).unwrap_err();
    assert!(matches!(err, Error::PinLocked { .. }), "{err:?}");
    assert_eq!(retries(&token, PinRole::User), 0, "tries on a locked PIN spend nothing further");

    token.unblock_pin(&so(), &pin("new-user-pin")).unwrap();
    let state = token.pin_state().unwrap();
    assert!(!state.user.locked && !state.user.must_change);
    assert_eq!(state.user.retries_left, Some(6));
    assert!(matches!(token.verify_pin(PinRole::User, &user()), Err(Error::WrongPin { .. })), "old PIN is gone");
    token.verify_pin(PinRole::User, &cred("new-user-pin")).unwrap();
}

#[test]
fn unblock_keeps_the_objects_sealed_under_the_master_key() {
    let fx = Fixture::new();
    let token = fx.token("carol");
    let mut request = data("secret");
    request.private = true;
    token.write_data(&request, &user()).unwrap();
    for _ in 0..6 {
        let _ = token.verify_pin(PinRole::User, &cred("9999"));
    }
    token.unblock_pin(&so(), &pin("fresh-pin")).unwrap();
    let value = token.read_data("secret", Some(&cred("fresh-pin"))).unwrap();
    assert_eq!(value.as_slice(), b"value of secret");
}

#[test]
fn wrong_so_pin_counts_and_a_locked_so_pin_leaves_only_initialisation() {
    let fx = Fixture::new();
    let token = fx.token("dave");
    let mut request = data("kept-until-reinit");
    request.private = true;
    token.write_data(&request, &user()).unwrap();
    for left in (0..6).rev() {
        match token.unblock_pin(&cred("bad-so-pin"), &pin("whatever")) {
            Err(Error::WrongPin { role: PinRole::So, retries_left: Some(n), .. }) => assert_eq!(n, left),
            other => panic!("expected a wrong SO PIN with {left} left, got {other:?}"),
        }
    }
    assert!(token.pin_state().unwrap().so.locked);
    let err = token.unblock_pin(&so(), &pin("whatever")).unwrap_err();
    assert!(matches!(err, Error::PinLocked { role: PinRole::So }), "{err:?}");
    assert!(err.to_string().contains("ukey token init"), "the message says what is left: {err}");
    let err = token.change_pin(PinRole::So, &so(), &pin("another")).unwrap_err();
    assert!(matches!(err, Error::PinLocked { role: PinRole::So }), "{err:?}");
    // The user PIN still works while only the SO PIN is locked.
    token.verify_pin(PinRole::User, &user()).unwrap();

    // Re-initialising with a new SO PIN wipes everything and unlocks both PINs.
    token
        .initialize(&InitRequest { so_pin: pin("new-so-pin"), label: "dave2".into(), user_pin: Some(pin("new-user")) })
        .unwrap();
    let state = token.pin_state().unwrap();
    assert!(!state.so.locked && !state.user.locked);
    assert!(token.objects().unwrap().data.is_empty(), "re-initialisation erases every object");
    token.verify_pin(PinRole::So, &cred("new-so-pin")).unwrap();
    token.verify_pin(PinRole::User, &cred("new-user")).unwrap();
    assert!(matches!(token.verify_pin(PinRole::User, &user()), Err(Error::WrongPin { .. })));
    assert_eq!(fx.driver.token("dave2").unwrap().info().serial, token.info().serial, "the serial survives");
}

#[test]
fn initialisation_needs_the_current_so_pin_while_it_is_not_locked() {
    let fx = Fixture::new();
    let token = fx.token("erin");
    token.write_data(&data("stays"), &user()).unwrap();
    let request = InitRequest { so_pin: pin("not-the-so-pin"), label: "erin".into(), user_pin: Some(pin("1111")) };
    match token.initialize(&request) {
        Err(Error::WrongPin { role: PinRole::So, retries_left: Some(5), .. }) => {}
        other => panic!("expected a wrong SO PIN, got {other:?}"),
    }
    assert_eq!(token.objects().unwrap().data.len(), 1, "a refused initialisation erases nothing");
    let request = InitRequest { so_pin: pin(SO_PIN), label: "erin".into(), user_pin: None };
    assert!(matches!(token.initialize(&request), Err(Error::InvalidInput(_))), "the soft token needs a user PIN");
    let request = InitRequest { so_pin: pin(SO_PIN), label: "erin-new".into(), user_pin: Some(pin("1111")) };
    token.initialize(&request).unwrap();
    assert!(token.objects().unwrap().data.is_empty());
    assert_eq!(token.pin_state().unwrap().so.retries_left, Some(6));
    token.verify_pin(PinRole::So, &so()).unwrap();
}

#[test]
fn change_pin_needs_the_old_one_and_counts_wrong_tries() {
    let fx = Fixture::new();
    let token = fx.token("frank");
    let err = token.change_pin(PinRole::User, &cred("not-it"), &pin("5555")).unwrap_err();
    assert!(matches!(err, Error::WrongPin { retries_left: Some(5), .. }), "{err:?}");
    token.change_pin(PinRole::User, &user(), &pin("5555")).unwrap();
    assert_eq!(token.pin_state().unwrap().user.retries_left, Some(6));
    token.verify_pin(PinRole::User, &cred("5555")).unwrap();
    token.change_pin(PinRole::So, &so(), &pin("so-new-1")).unwrap();
    token.unblock_pin(&cred("so-new-1"), &pin("6666")).unwrap();
    token.verify_pin(PinRole::User, &cred("6666")).unwrap();
}

#[test]
fn empty_and_short_pins_are_refused_without_spending_a_try() {
    let fx = Fixture::new();
    let token = fx.token("gina");
    assert!(matches!(Pin::new(""), Err(Error::PinRejected(_))), "an empty PIN cannot even be built");
    assert!(matches!(Pin::new("\n"), Err(Error::PinRejected(_))));
    let err = token.verify_pin(PinRole::User, &cred("123")).unwrap_err();
    assert!(matches!(err, Error::PinRejected(_)), "{err:?}");
    assert!(err.to_string().contains("4 to 64"), "the message states the rule: {err}");
    assert_eq!(retries(&token, PinRole::User), 6);
    assert!(matches!(token.change_pin(PinRole::User, &user(), &pin("12")), Err(Error::PinRejected(_))));
    assert_eq!(retries(&token, PinRole::User), 6);
    assert!(matches!(token.unblock_pin(&so(), &pin("1")), Err(Error::PinRejected(_))));
    assert!(matches!(fx.driver.create_token("short", &pin("so"), &pin(USER_PIN)), Err(Error::PinRejected(_))));
    let err = token.verify_pin(PinRole::User, &Credential::ProtectedPath).unwrap_err();
    assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
}

#[test]
fn pins_never_appear_in_errors_or_debug_output() {
    const SENTINEL_USER: &str = "Sentinel-User-4711";
    const SENTINEL_SO: &str = "Sentinel-So-0815";
    const SENTINEL_WRONG: &str = "Sentinel-Wrong-3141";
    let fx = Fixture::new();
    let token = fx.driver.create_soft_token("sentinel", &pin(SENTINEL_SO), &pin(SENTINEL_USER)).unwrap();
    let mut outputs = Vec::new();
    let mut record = |r: Result<(), Error>| {
        if let Err(e) = r {
            outputs.push(format!("{e} {e:?}"));
        }
    };
    for _ in 0..7 {
        record(token.verify_pin(PinRole::User, &cred(SENTINEL_WRONG)));
    }
    record(token.change_pin(PinRole::User, &cred(SENTINEL_WRONG), &pin(SENTINEL_USER)));
    record(token.unblock_pin(&cred(SENTINEL_WRONG), &pin(SENTINEL_USER)));
    record(token.write_data(&data("d"), &cred(SENTINEL_USER)).map(|_| ()));
    record(token.unblock_pin(&cred(SENTINEL_SO), &pin(SENTINEL_USER)));
    record(token.write_data(&data("d"), &cred(SENTINEL_WRONG)).map(|_| ()));
    let request =
        InitRequest { so_pin: pin(SENTINEL_WRONG), label: "sentinel".into(), user_pin: Some(pin(SENTINEL_USER)) };
    record(token.initialize(&request));
    outputs.push(format!("{request:?} {:?} {:?}", cred(SENTINEL_USER), pin(SENTINEL_SO)));
    outputs.push(format!("{token:?} {:?} {:?} {:?}", fx.driver, token.pin_state().unwrap(), token.objects().unwrap()));
    assert!(outputs.len() >= 10, "the scenario produced errors to inspect: {outputs:?}");
    for text in &outputs {
        for secret in [SENTINEL_USER, SENTINEL_SO, SENTINEL_WRONG, "4711", "0815", "3141"] {
            assert!(!text.contains(secret), "a PIN leaked into output: {text}");
        }
    }
    let file = std::fs::read(token.path()).unwrap();
    let file = String::from_utf8_lossy(&file);
    for secret in [SENTINEL_USER, SENTINEL_SO, SENTINEL_WRONG] {
        assert!(!file.contains(secret), "a PIN is stored in clear in the token file");
    }
}

#[test]
fn the_default_kdf_parameters_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let driver = SoftDriver::open(dir.path());
    let token = driver.create_soft_token("real-kdf", &pin(SO_PIN), &pin(USER_PIN)).unwrap();
    let file = std::fs::read_to_string(token.path()).unwrap();
    assert!(file.contains(&format!("\"m_cost_kib\": {}", KdfParams::DEFAULT.m_cost_kib)), "{file}");
    assert!(matches!(token.verify_pin(PinRole::User, &cred("wrong-one")), Err(Error::WrongPin { .. })));
    token.verify_pin(PinRole::User, &user()).unwrap();
    token.verify_pin(PinRole::So, &so()).unwrap();
}

fn data(label: &str) -> ukey_api::DataObjectWrite {
    ukey_api::DataObjectWrite {
        label: label.into(),
        application: "ukey-tests".into(),
        id: None,
        value: ukey_api::SecretBytes::new(format!("value of {label}").into_bytes()),
        private: false,
    }
}
