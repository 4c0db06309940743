//! Third-party proof for the PIN and PUK: OpenSC's view of wrong PINs, blocking, unblocking and
//! PIN change agrees with the card's own retry counters.

mod opensc_support;

use opensc_support::*;
use ukey_vpiv::{CardConfig, VirtualPiv};

fn login(reader: &str, pin: &str) -> std::process::Output {
    pkcs11_tool(reader, &["--login", "--pin", pin, "-O"])
}

fn token_flags(reader: &str) -> String {
    let slots = stdout(&must(pkcs11_tool(reader, &["-L"])));
    slots.lines().find(|l| l.contains("token flags")).unwrap_or_default().to_string()
}

#[test]
fn wrong_pins_block_the_puk_unblocks_and_the_pin_changes_as_opensc_reports() {
    let lease = lease();
    let reader = lease.reader_name();
    let inserted = lease.insert(VirtualPiv::new(CardConfig::default()).unwrap()).expect("insert");
    let tries = || {
        let slot = inserted.slot();
        (slot.card.pin_tries_left(), slot.card.puk_tries_left())
    };

    let out = login(reader, "000000");
    assert!(all_output(&out).contains("CKR_PIN_INCORRECT"), "{}", all_output(&out));
    assert_eq!(tries(), (2, 3), "one wrong PIN spends exactly one try");
    must(login(reader, "123456"));
    assert_eq!(tries(), (3, 3), "a right PIN resets the counter");

    for left in [2, 1, 0] {
        let out = login(reader, "999999");
        assert!(all_output(&out).contains("CKR_PIN_INCORRECT"), "{}", all_output(&out));
        assert_eq!(tries(), (left, 3));
    }
    let out = login(reader, "123456");
    assert!(all_output(&out).contains("CKR_PIN_LOCKED"), "{}", all_output(&out));
    assert_eq!(tries(), (0, 3), "a blocked PIN spends nothing");
    assert!(token_flags(reader).contains("user PIN locked"), "{}", token_flags(reader));

    // OpenSC's PKCS#11 SO login sends VERIFY with the PUK reference 81, which SP 800-73-4 does
    // not define (the PUK only serves RESET RETRY COUNTER and CHANGE REFERENCE DATA): the card
    // refuses it with 6A88 and spends no PUK try.
    let out = pkcs11_tool(
        reader,
        &["--unlock-pin", "--login", "--login-type", "so", "--so-pin", "12345678", "--new-pin", "111111"],
    );
    assert!(!out.status.success());
    assert_eq!(tries(), (0, 3));

    // pkcs15-tool unblocks with RESET RETRY COUNTER.
    let out =
        run("pkcs15-tool", &["--reader", reader, "--unblock-pin", "--puk", "00000000", "--new-pin", "222222"], &[]);
    assert!(!out.status.success(), "a wrong PUK fails");
    assert_eq!(tries(), (0, 2), "and spends one PUK try");
    must(run("pkcs15-tool", &["--reader", reader, "--unblock-pin", "--puk", "12345678", "--new-pin", "222222"], &[]));
    assert_eq!(tries(), (3, 3));
    assert!(!token_flags(reader).contains("locked"), "{}", token_flags(reader));

    let out = must(pkcs11_tool(reader, &["--login", "--pin", "222222", "--change-pin", "--new-pin", "654321"]));
    assert!(stdout(&out).contains("PIN successfully changed"));
    let out = login(reader, "222222");
    assert!(all_output(&out).contains("CKR_PIN_INCORRECT"), "the old PIN is gone");
    must(login(reader, "654321"));
    assert_eq!(tries(), (3, 3));

    // The PUK changes through pkcs15-tool (CHANGE REFERENCE DATA on 81).
    must(run(
        "pkcs15-tool",
        &["--reader", reader, "--change-pin", "--auth-id", "02", "--pin", "12345678", "--new-pin", "87654321"],
        &[],
    ));
    let out =
        run("pkcs15-tool", &["--reader", reader, "--unblock-pin", "--puk", "12345678", "--new-pin", "333333"], &[]);
    assert!(!out.status.success(), "the old PUK is gone");
    assert_eq!(tries(), (3, 2));
    drop(inserted);
}
