//! `ukey` on a PIV card, end to end: the real binary with only the PC/SC driver, through pcscd and
//! vsmartcard's vpcd, on the virtual PIV card fixture. Keys are generated on the card, a CSR is
//! made and certified by an OpenSSL CA, the certificate goes back onto the card with PUT DATA,
//! signatures verify with `openssl`, and the PIN lifecycle runs to the reset that follows a
//! blocked PIN and PUK.

mod piv_rig;

use piv_rig::{PIN, PUK, Rig, insert, lease, s};

/// The PIN and PUK this file sets when it changes them.
const NEW_PIN: &str = "24681357";
const NEW_PUK: &str = "87654321";

/// Exit code of a PIN problem (wrong, locked, missing).
const EXIT_PIN: i32 = 3;

/// The one token in `ukey tokens --json`, which must be the virtual card.
fn only_token(rig: &Rig) -> serde_json::Value {
    let tokens = rig.ukey(&["--json", "tokens"], &[]).ok("ukey tokens").json();
    let list = tokens["tokens"].as_array().expect("a token list");
    assert_eq!(list.len(), 1, "exactly the card in {} is listed: {tokens}", rig.reader());
    list[0].clone()
}

/// Generates a key in `slot`, makes a CSR for it, has a CA certify it and imports the
/// certificate; returns the certificate's PEM file.
fn key_with_certificate(rig: &Rig, slot: &str, alg: &str, cn: &str) -> std::path::PathBuf {
    let pin = [("UKEY_PIN", PIN)];
    let key = rig
        .ukey(&["--json", "keygen", "--alg", alg, "--label", cn, "--id", slot], &pin)
        .ok(&format!("ukey keygen {alg} in {slot}"))
        .json();
    assert_eq!(key["id"], slot, "{key}");

    let csr = rig.path(&format!("{cn}.csr"));
    rig.ukey(&["csr", "--key", slot, "--subject", &format!("CN={cn}"), "--out", s(&csr)], &pin).ok("ukey csr");
    // OpenSSL checks the CSR's self-signature: the card's key made it.
    rig.openssl(&["req", "-in", s(&csr), "-noout", "-verify"]).ok("openssl req -verify");
    let crt = rig.issue(&csr, cn);

    let imported = rig.ukey(&["--json", "cert", "import", s(&crt)], &pin).ok("ukey cert import").json();
    assert_eq!(imported["id"], slot, "the certificate lands in the slot of its key: {imported}");
    crt
}

/// Signs `message` with the key in `slot` and checks the signature with `openssl`.
fn sign_and_check_with_openssl(rig: &Rig, slot: &str, digest: &str, message: &[u8]) {
    let msg = rig.path(&format!("msg-{slot}"));
    let sig = rig.path(&format!("sig-{slot}"));
    let public = rig.path(&format!("pub-{slot}.pem"));
    std::fs::write(&msg, message).unwrap();
    let pem = rig.ukey(&["pubkey", "--key", slot], &[]).ok("ukey pubkey").bytes;
    std::fs::write(&public, pem).unwrap();
    rig.ukey(&["sign", "--key", slot, "--in", s(&msg), "--out", s(&sig)], &[("UKEY_PIN", PIN)]).ok("ukey sign");
    let verified = rig
        .openssl(&["dgst", &format!("-{digest}"), "-verify", s(&public), "-signature", s(&sig), s(&msg)])
        .ok("openssl dgst -verify");
    assert!(verified.stdout.contains("Verified OK"), "{}", verified.stdout);
    // ukey's own verifier agrees.
    rig.ukey(&["verify", "--pubkey", s(&public), "--sig", s(&sig), "--in", s(&msg)], &[]).ok("ukey verify");
}

#[test]
fn keys_csr_certificates_and_signatures_on_a_piv_card() {
    let lease = lease();
    let _card = insert(&lease);
    let rig = Rig::new(&lease);

    let token = only_token(&rig);
    assert_eq!(token["kind"], "pcsc", "{token}");
    assert!(!token["serial"].as_str().unwrap_or_default().is_empty(), "the CHUID gives a serial: {token}");
    assert_eq!(token["location"], rig.reader(), "{token}");
    assert_eq!(token["pin"]["user"]["retries_left"], 3, "an empty VERIFY reads the counter: {token}");

    // A factory card holds no certificate.
    let certs = rig.ukey(&["--json", "certs"], &[]).ok("ukey certs").json();
    assert_eq!(certs["certificates"].as_array().map(Vec::len), Some(0), "{certs}");

    let p256 = key_with_certificate(&rig, "9a", "p256", "PIV Auth Holder");
    let p384 = key_with_certificate(&rig, "9c", "p384", "PIV Signer");

    // A fresh process (nothing remembered) reads both certificates back from the card.
    let certs = rig.ukey(&["--json", "certs"], &[]).ok("ukey certs").json();
    let list = certs["certificates"].as_array().expect("certificates");
    assert_eq!(list.len(), 2, "{certs}");
    for (slot, cn, file) in [("9a", "PIV Auth Holder", &p256), ("9c", "PIV Signer", &p384)] {
        let cert = list.iter().find(|c| c["id"] == slot).unwrap_or_else(|| panic!("no certificate in {slot}: {certs}"));
        assert!(cert["subject"].as_str().unwrap_or_default().contains(cn), "{cert}");
        assert_eq!(cert["has_private_key"], true, "{cert}");
        let stored = cert["pem"].as_str().expect("pem");
        let issued = std::fs::read_to_string(file).unwrap();
        assert_eq!(stored.trim(), issued.trim(), "the card returns the certificate imported into {slot}");
    }
    assert_eq!(token["serial"], list[0]["token_serial"], "{certs}");

    sign_and_check_with_openssl(&rig, "9a", "sha256", b"signed on a PIV card in slot 9a");
    // 9C (digital signature) demands the PIN right before each signature; ukey does that.
    sign_and_check_with_openssl(&rig, "9c", "sha384", b"signed on a PIV card in slot 9c");

    // A certificate whose key is on no slot is refused, and nothing is overwritten.
    rig.openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", s(&rig.path("other.key"))])
        .ok("other key");
    rig.openssl(&[
        "req",
        "-new",
        "-key",
        s(&rig.path("other.key")),
        "-subj",
        "/CN=Stranger",
        "-out",
        s(&rig.path("other.csr")),
    ])
    .ok("other csr");
    let stranger = rig.issue(&rig.path("other.csr"), "Stranger");
    let refused = rig.ukey(&["cert", "import", s(&stranger)], &[("UKEY_PIN", PIN)]);
    assert_ne!(refused.code, Some(0), "a certificate for a key the card lacks is refused: {}", refused.stdout);
    let after = rig.ukey(&["--json", "certs"], &[]).ok("ukey certs").json();
    assert_eq!(after["certificates"], certs["certificates"], "the refused import changed nothing");
}

#[test]
fn rsa_2048_key_generated_on_the_card_signs_for_openssl() {
    let lease = lease();
    let _card = insert(&lease);
    let rig = Rig::new(&lease);
    let key = rig
        .ukey(&["--json", "keygen", "--alg", "rsa2048", "--label", "rsa", "--id", "9d"], &[("UKEY_PIN", PIN)])
        .ok("ukey keygen rsa2048")
        .json();
    assert_eq!(key["id"], "9d", "{key}");
    sign_and_check_with_openssl(&rig, "9d", "sha256", b"an RSA signature from slot 9d");
}

#[test]
fn pin_lifecycle_wrong_pin_change_unblock_and_reset() {
    let lease = lease();
    let card = insert(&lease);
    let rig = Rig::new(&lease);
    let msg = rig.path("msg");
    std::fs::write(&msg, b"needs the PIN").unwrap();
    let key = rig.ukey(&["keygen", "--alg", "p256", "--label", "k", "--id", "9a"], &[("UKEY_PIN", PIN)]);
    key.ok("ukey keygen");
    let serial = only_token(&rig)["serial"].as_str().unwrap().to_string();

    let status =
        |rig: &Rig| rig.ukey(&["--json", "pin", "status"], &[]).ok("ukey pin status").json()["tokens"][0].clone();
    assert_eq!(status(&rig)["pin"]["user"]["retries_left"], 3);

    // A wrong PIN: exit code 3, and the card's own counter (63C2) in the error.
    let wrong = rig.ukey(&["--json", "sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", "999999")]);
    let wrong = wrong.code(EXIT_PIN, "sign with a wrong PIN");
    let error = wrong.json_error();
    assert_eq!(error["error"]["kind"], "WrongPin", "{error}");
    assert_eq!(error["error"]["retries_left"], 2, "{error}");
    assert_eq!(status(&rig)["pin"]["user"]["retries_left"], 2, "pin status reads the counter without spending a try");
    assert_eq!(card.slot().card.pin_tries_left(), 2, "the card agrees");

    // The right PIN resets the counter; a change takes the old and new PIN.
    rig.ukey(&["sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", PIN)]).ok("sign with the PIN");
    assert_eq!(status(&rig)["pin"]["user"]["retries_left"], 3);
    rig.ukey(&["pin", "change"], &[("UKEY_PIN", PIN), ("UKEY_NEW_PIN", NEW_PIN)]).ok("ukey pin change");
    rig.ukey(&["sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", PIN)]).code(EXIT_PIN, "the old PIN is gone");
    rig.ukey(&["sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", NEW_PIN)]).ok("sign with the new PIN");

    // The PUK changes too (CHANGE REFERENCE DATA on 81).
    rig.ukey(&["pin", "change", "--so"], &[("UKEY_SO_PIN", PUK), ("UKEY_NEW_PIN", NEW_PUK)]).ok("ukey pin change --so");

    // Three wrong PINs block it: PinLocked, exit 3, and status says locked.
    for left in [2, 1] {
        let e = rig.ukey(&["--json", "sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", "999999")]);
        assert_eq!(e.code(EXIT_PIN, "wrong PIN").json_error()["error"]["retries_left"], left);
    }
    let blocked = rig.ukey(&["--json", "sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", "999999")]);
    let blocked = blocked.code(EXIT_PIN, "last wrong PIN").json_error();
    assert!(matches!(blocked["error"]["kind"].as_str(), Some("PinLocked" | "WrongPin")), "{blocked}");
    let now = status(&rig);
    assert_eq!(now["pin"]["user"]["locked"], true, "{now}");
    rig.ukey(&["--json", "sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", NEW_PIN)])
        .code(EXIT_PIN, "even the right PIN is refused while blocked");

    // The old PUK is refused (RESET RETRY COUNTER 63Cx); the new one unblocks and sets the PIN.
    let bad_puk = rig.ukey(&["--json", "pin", "unblock"], &[("UKEY_SO_PIN", PUK), ("UKEY_NEW_PIN", PIN)]);
    assert_eq!(bad_puk.code(EXIT_PIN, "unblock with the old PUK").json_error()["error"]["retries_left"], 2);
    rig.ukey(&["pin", "unblock"], &[("UKEY_SO_PIN", NEW_PUK), ("UKEY_NEW_PIN", PIN)]).ok("ukey pin unblock");
    assert_eq!(status(&rig)["pin"]["user"]["retries_left"], 3);
    rig.ukey(&["sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", PIN)]).ok("sign after the unblock");

    // Block both PIN and PUK; then only `token init` (the PIV reset, INS FB) brings the card back.
    for _ in 0..3 {
        rig.ukey(&["sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", "999999")]).code(EXIT_PIN, "wrong PIN");
    }
    for _ in 0..3 {
        rig.ukey(&["pin", "unblock"], &[("UKEY_SO_PIN", "00000000"), ("UKEY_NEW_PIN", PIN)])
            .code(EXIT_PIN, "wrong PUK");
    }
    assert_eq!(card.slot().card.puk_tries_left(), 0, "the PUK is blocked");
    rig.ukey(&["pin", "unblock"], &[("UKEY_SO_PIN", NEW_PUK), ("UKEY_NEW_PIN", PIN)])
        .code(EXIT_PIN, "a blocked PUK refuses even the right value");

    let init = rig
        .ukey(
            &["--json", "token", "init", "--token", &serial, "--label", "fresh"],
            &[("UKEY_SO_PIN", NEW_PUK), ("UKEY_NEW_PIN", NEW_PIN)],
        )
        .ok("ukey token init")
        .json();
    assert_eq!(init["serial"], serial, "the card keeps its identity (CHUID) across the reset: {init}");
    assert_eq!(status(&rig)["pin"]["user"]["retries_left"], 3);
    // The reset erased the keys and certificates; the PIN asked for at init works, the PUK too.
    let certs = rig.ukey(&["--json", "certs"], &[]).ok("ukey certs").json();
    assert_eq!(certs["certificates"].as_array().map(Vec::len), Some(0), "{certs}");
    rig.ukey(&["keygen", "--alg", "p256", "--label", "k", "--id", "9a"], &[("UKEY_PIN", NEW_PIN)])
        .ok("keygen after the reset with the new PIN");
    rig.ukey(&["sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", NEW_PIN)]).ok("sign after the reset");
    rig.ukey(&["pin", "change", "--so"], &[("UKEY_SO_PIN", NEW_PUK), ("UKEY_NEW_PIN", PUK)]).ok("the PUK set at init");
}
