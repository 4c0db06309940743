//! `ukey` on PKCS#11 tokens, end to end: modules, tokens, keys and certificates made by other
//! clients, keys made by ukey used by OpenSC, PIN lifecycle honoured by OpenSC, and names that
//! fit two objects.

mod pkcs11_rig;

use pkcs11_rig::{PIN, Rig, SO_PIN, SOFTHSM, require, sha256};
use ukey_api::Mechanism;
use ukey_api::crypto::SignData;

#[test]
fn ukey_modules_reports_each_module_and_never_fails_for_a_bad_one() {
    let rig = Rig::new();
    rig.init_token("Mods");
    let text = rig.path("not-a-library.so");
    std::fs::write(&text, "plain text\n").unwrap();
    rig.write_config(&format!(
        "\n[[pkcs11.modules]]\npath = \"{}\"\n\n[[pkcs11.modules]]\npath = \"/usr/lib/x86_64-linux-gnu/libz.so.1\"\n\n[[pkcs11.modules]]\npath = \"{}\"\n",
        text.display(),
        rig.path("missing.so").display()
    ));
    let ran = rig.ukey(&["modules"], &[]).ok("ukey modules");
    // SoftHSM always offers one free (uninitialised) token beside the ones made.
    assert!(ran.stdout.contains("softhsm2") && ran.stdout.contains("2 token(s) present"), "{}", ran.stdout);
    assert!(ran.stdout.contains("not a loadable library"), "{}", ran.stdout);
    assert!(ran.stdout.contains("not a PKCS#11 module"), "{}", ran.stdout);
    assert!(ran.stdout.contains("no such file"), "{}", ran.stdout);

    let json = rig.ukey(&["modules", "--json"], &[]).ok("ukey modules --json").json();
    let modules = json["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 4, "{json}");
    let softhsm = modules.iter().find(|m| m["path"] == SOFTHSM).unwrap();
    assert_eq!(softhsm["loaded"], true);
    assert_eq!(softhsm["tokens"], 2);
    assert_eq!(modules.iter().filter(|m| m["loaded"] == false).count(), 3);

    // The good module's token is still usable next to the bad ones.
    let tokens = rig.ukey(&["tokens", "--json"], &[]).ok("ukey tokens").json();
    assert!(tokens["tokens"].as_array().unwrap().iter().any(|t| t["label"] == "Mods"), "{tokens}");
}

#[test]
fn a_key_made_by_ukey_is_listed_and_used_by_pkcs11_tool() {
    let rig = Rig::new();
    rig.init_token("MadeByUkey");
    let key = rig
        .ukey(
            &["keygen", "--token", "MadeByUkey", "--alg", "p256", "--label", "ukey-key", "--json"],
            &[("UKEY_PIN", PIN)],
        )
        .ok("ukey keygen")
        .json();
    let id = key["id"].as_str().unwrap().to_string();
    let listing = rig.pkcs11_tool(&["--token-label", "MadeByUkey", "-O"]).ok("pkcs11-tool -O");
    assert!(listing.stdout.contains("ukey-key") && listing.stdout.contains(&id), "{}", listing.stdout);

    let digest = sha256(b"signed by OpenSC with a ukey key");
    let dgst = rig.path("dgst");
    let sig = rig.path("sig");
    std::fs::write(&dgst, &digest).unwrap();
    rig.pkcs11_tool(&[
        "--token-label",
        "MadeByUkey",
        "--login",
        "--pin",
        PIN,
        "--sign",
        "-m",
        "ECDSA",
        "--id",
        &id,
        "-i",
        dgst.to_str().unwrap(),
        "-o",
        sig.to_str().unwrap(),
    ])
    .ok("pkcs11-tool --sign");
    let pem = rig.ukey(&["pubkey", "--token", "MadeByUkey", "--key", "ukey-key"], &[]).ok("ukey pubkey").stdout;
    let spki = ukey_api::crypto::public_key_from_pem_or_der(pem.as_bytes()).unwrap();
    let raw = std::fs::read(&sig).unwrap();
    ukey_api::crypto::verify_signature(&spki, &Mechanism::EcdsaSha256, SignData::Digest(&digest), &raw)
        .expect("ukey's verify accepts the signature pkcs11-tool made with ukey's key");
}

/// A P-256 key pair with CKA_ID 01 made on `token` by OpenSC's pkcs11-tool, not by ukey.
fn p256_key_by_pkcs11_tool(rig: &Rig, token: &str, label: &str) {
    rig.pkcs11_tool(&[
        "--token-label",
        token,
        "--login",
        "--pin",
        PIN,
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "01",
        "--label",
        label,
    ])
    .ok("pkcs11-tool --keypairgen");
}

#[test]
fn keys_and_certificates_from_other_clients_are_listed() {
    require("p11tool", "gnutls-bin");
    let rig = Rig::new();
    rig.init_token("Foreign");
    p256_key_by_pkcs11_tool(&rig, "Foreign", "opensc-key");
    rig.run(
        "p11tool",
        &[
            "--provider",
            SOFTHSM,
            "--login",
            &format!("--set-pin={PIN}"),
            "--generate-privkey=ECDSA",
            "--curve=secp256r1",
            "--label=gnutls-key",
            "pkcs11:token=Foreign",
        ],
    )
    .ok("p11tool --generate-privkey");
    let pem = rig.ukey(&["pubkey", "--token", "Foreign", "--key", "opensc-key"], &[]).ok("ukey pubkey").stdout;
    let cert = rig.certificate_for(&pem, "Foreign Holder");
    let file = rig.path("cert.der");
    std::fs::write(&file, &cert).unwrap();
    rig.pkcs11_tool(&[
        "--token-label",
        "Foreign",
        "--login",
        "--pin",
        PIN,
        "--write-object",
        file.to_str().unwrap(),
        "--type",
        "cert",
        "--id",
        "01",
        "--label",
        "opensc-cert",
    ])
    .ok("pkcs11-tool --write-object");

    let keys = rig.ukey(&["keys", "--json"], &[]).ok("ukey keys").json();
    let text = keys.to_string();
    assert!(text.contains("opensc-key") && text.contains("gnutls-key"), "{text}");
    let certs = rig.ukey(&["certs", "--json"], &[]).ok("ukey certs").json();
    let text = certs.to_string();
    assert!(text.contains("Foreign Holder") && text.contains("opensc-cert"), "{text}");
    let human = rig.ukey(&["certs"], &[]).ok("ukey certs").stdout;
    assert!(human.contains("Foreign Holder"), "{human}");
}

#[test]
fn pin_change_and_unblock_by_ukey_are_honoured_by_pkcs11_tool() {
    let rig = Rig::new();
    rig.init_token("Pins");
    let login = |pin: &str| rig.pkcs11_tool(&["--token-label", "Pins", "--login", "--pin", pin, "-O"]).code == Some(0);
    rig.ukey(&["pin", "change", "--token", "Pins"], &[("UKEY_PIN", PIN), ("UKEY_NEW_PIN", "24681357")])
        .ok("ukey pin change");
    assert!(login("24681357") && !login(PIN));
    rig.ukey(&["pin", "unblock", "--token", "Pins"], &[("UKEY_SO_PIN", SO_PIN), ("UKEY_NEW_PIN", "13572468")])
        .ok("ukey pin unblock");
    assert!(login("13572468") && !login("24681357"));

    // A wrong PIN: exit code 3, and the message carries the token's PIN flags.
    let ran = rig.ukey(&["pin", "change", "--token", "Pins"], &[("UKEY_PIN", "000000"), ("UKEY_NEW_PIN", "11223344")]);
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert!(ran.stderr.contains("wrong user PIN") && ran.stderr.contains("CKF_USER_PIN_COUNT_LOW"), "{}", ran.stderr);
}

#[test]
fn a_label_that_fits_two_keys_asks_for_a_uri() {
    let rig = Rig::new();
    rig.init_token("Twins");
    for id in ["0a", "0b"] {
        rig.pkcs11_tool(&[
            "--token-label",
            "Twins",
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            id,
            "--label",
            "same-name",
        ])
        .ok("pkcs11-tool --keypairgen");
    }
    let ran = rig.ukey(&["pubkey", "--token", "Twins", "--key", "same-name"], &[]);
    assert_eq!(ran.code, Some(4), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("pkcs11:") && ran.stderr.contains("id=%0A") && ran.stderr.contains("id=%0B"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("URI"), "{}", ran.stderr);
    // The URI it offers works.
    let uri = "pkcs11:token=Twins;object=same-name;id=%0B;type=private";
    rig.ukey(&["pubkey", "--key", uri], &[]).ok("ukey pubkey by URI");
}

#[test]
fn ukey_signatures_with_keys_made_by_other_clients_verify_with_openssl() {
    require("openssl", "openssl");
    require("p11tool", "gnutls-bin");
    let rig = Rig::new();
    rig.init_token("Signing");
    let login = ["--token-label", "Signing", "--login", "--pin", PIN];
    for (key_type, id, label) in [("EC:prime256v1", "01", "ec-key"), ("RSA:2048", "02", "rsa-key")] {
        let mut args = login.to_vec();
        args.extend(["--keypairgen", "--key-type", key_type, "--id", id, "--label", label]);
        rig.pkcs11_tool(&args).ok("pkcs11-tool --keypairgen");
    }
    rig.run(
        "p11tool",
        &[
            "--provider",
            SOFTHSM,
            "--login",
            &format!("--set-pin={PIN}"),
            "--generate-privkey=ECDSA",
            "--curve=secp256r1",
            "--label=gnutls-key",
            "pkcs11:token=Signing",
        ],
    )
    .ok("p11tool --generate-privkey");
    let message = rig.path("message.txt");
    std::fs::write(&message, b"I agree to the terms.\n").unwrap();
    let cases: [(&str, &str, &[&str]); 4] = [
        ("ec-key", "ecdsa-sha256", &[]),
        ("gnutls-key", "ecdsa-sha256", &[]),
        ("rsa-key", "rsa-pkcs1-sha256", &[]),
        ("rsa-key", "rsa-pss-sha256", &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]),
    ];
    for (key, alg, sigopts) in cases {
        let sig = rig.path(&format!("{key}-{alg}.sig"));
        let public = rig.path(&format!("{key}.pem"));
        rig.ukey(
            &[
                "sign",
                "--token",
                "Signing",
                "--key",
                key,
                "--alg",
                alg,
                "--in",
                message.to_str().unwrap(),
                "--out",
                sig.to_str().unwrap(),
            ],
            &[("UKEY_PIN", PIN)],
        )
        .ok("ukey sign");
        let pem = rig.ukey(&["pubkey", "--token", "Signing", "--key", key], &[]).ok("ukey pubkey").stdout;
        std::fs::write(&public, pem).unwrap();
        let mut args =
            vec!["dgst", "-sha256", "-verify", public.to_str().unwrap(), "-signature", sig.to_str().unwrap()];
        args.extend_from_slice(sigopts);
        args.push(message.to_str().unwrap());
        let verified = rig.run("openssl", &args);
        assert!(verified.stdout.contains("Verified OK"), "{key} {alg}: {}{}", verified.stdout, verified.stderr);
        // And ukey's own verify agrees.
        rig.ukey(
            &[
                "verify",
                "--pubkey",
                public.to_str().unwrap(),
                "--sig",
                sig.to_str().unwrap(),
                "--in",
                message.to_str().unwrap(),
                "--alg",
                alg,
            ],
            &[],
        )
        .ok("ukey verify");
    }

    // An RSA key asked for SM2: a clear refusal naming what it can do.
    let ran = rig.ukey(
        &["sign", "--token", "Signing", "--key", "rsa-key", "--alg", "sm2-sm3", "--in", message.to_str().unwrap()],
        &[("UKEY_PIN", PIN)],
    );
    assert_ne!(ran.code, Some(0));
    assert!(ran.stderr.contains("not supported") && ran.stderr.contains("rsa-pkcs1-sha256"), "{}", ran.stderr);
    // A wrong PIN signs nothing: exit 3, with the token's flags.
    let ran = rig.ukey(
        &["sign", "--token", "Signing", "--key", "ec-key", "--in", message.to_str().unwrap()],
        &[("UKEY_PIN", "000000")],
    );
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert!(ran.stderr.contains("CKF_USER_PIN"), "{}", ran.stderr);
}

/// cryptoki logs "Mechanism type N is not supported" at error level for every vendor mechanism a
/// module lists; SoftHSM lists several. ukey demotes that library's notes to debug, so an
/// ordinary keygen and sign print nothing of the kind, while `-vvv` still shows them and ukey's
/// own errors still reach stderr.
#[test]
fn cryptoki_notes_about_vendor_mechanisms_do_not_reach_stderr() {
    let rig = Rig::new();
    rig.init_token("Quiet");
    let pin = [("UKEY_PIN", PIN)];
    let keygen =
        rig.ukey(&["keygen", "--token", "Quiet", "--alg", "p256", "--label", "quiet-key"], &pin).ok("ukey keygen");
    let message = rig.path("message.txt");
    std::fs::write(&message, b"quiet please\n").unwrap();
    let sign = rig.ukey(&["sign", "--token", "Quiet", "--key", "quiet-key", "--in", message.to_str().unwrap()], &pin);
    let sign = sign.ok("ukey sign");
    let keys = rig.ukey(&["keys", "--token", "Quiet"], &[]).ok("ukey keys");
    for (what, ran) in [("keygen", &keygen), ("sign", &sign), ("keys", &keys)] {
        assert!(!ran.stderr.contains("is not supported"), "ukey {what} printed cryptoki's notes:\n{}", ran.stderr);
        assert!(!ran.stderr.contains("cryptoki"), "ukey {what} printed cryptoki's notes:\n{}", ran.stderr);
    }
    // The notes are still there for whoever asks for debug output.
    let verbose = rig.ukey(&["-vvv", "keys", "--token", "Quiet"], &[]).ok("ukey -vvv keys");
    assert!(verbose.stderr.contains("ukey: debug: cryptoki"), "{}", verbose.stderr);
    // ukey's own errors are untouched.
    let wrong = rig.ukey(&["sign", "--token", "Quiet", "--key", "quiet-key", "--in", "/nonexistent/file"], &pin);
    assert_ne!(wrong.code, Some(0));
    assert!(wrong.stderr.contains("/nonexistent/file"), "{}", wrong.stderr);
}

/// A one-shot `ukey sign` lists the token's objects once: the custody gate reuses the listing the
/// key lookup made for the certificate it records, instead of listing everything again (that was
/// a quarter of the sign's PKCS#11 calls). Counted by the fault shim (drivers/pkcs11/fault-module,
/// a dev-dependency) in front of SoftHSM with no fault planned.
#[test]
fn a_one_shot_sign_lists_the_token_once() {
    let rig = Rig::new();
    rig.init_token("Once");
    p256_key_by_pkcs11_tool(&rig, "Once", "once");
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ukey"));
    let dir = exe.parent().unwrap();
    let shim = [dir.join("libukey_p11_fault.so"), dir.join("deps").join("libukey_p11_fault.so")]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("libukey_p11_fault.so is missing next to {}: cargo test builds it", exe.display()));
    let config = std::fs::read_to_string(rig.path("config.toml")).unwrap();
    std::fs::write(rig.path("config.toml"), config.replace(SOFTHSM, shim.to_str().unwrap())).unwrap();
    let message = rig.path("message.txt");
    std::fs::write(&message, b"counted\n").unwrap();
    let trace = rig.path("trace");
    let trace_text = trace.to_str().unwrap().to_string();
    let sig = rig.path("sig");
    rig.ukey(
        &[
            "sign",
            "--token",
            "Once",
            "--key",
            "once",
            "--in",
            message.to_str().unwrap(),
            "--out",
            sig.to_str().unwrap(),
        ],
        &[("UKEY_PIN", PIN), ("UKEY_P11_FAULT_TRACE", &trace_text)],
    )
    .ok("ukey sign through the shim");
    let calls = std::fs::read_to_string(&trace).unwrap();
    let count = |name: &str| calls.lines().filter(|l| l.ends_with(&format!(" {name}"))).count();
    // One listing (certificates, private keys, public keys, data objects), then the signing key.
    assert_eq!(count("C_FindObjectsInit"), 5, "object searches in one `ukey sign`:\n{calls}");
    // The slot list read while loading the module serves the enumeration; `status()` lists none.
    assert_eq!(count("C_GetSlotList"), 2, "slot listings in one `ukey sign`:\n{calls}");
    // One per slot while enumerating (SoftHSM shows the token and its free slot), then one
    // that checks the token before its session opens; none after.
    assert_eq!(count("C_GetTokenInfo"), 3, "token info reads in one `ukey sign`:\n{calls}");
    // Signing needs the mechanism list, not the key generation limits.
    assert_eq!(count("C_GetMechanismInfo"), 0, "mechanism info reads in one `ukey sign`:\n{calls}");
    // The buffer is sized from the key: no length query before C_Sign.
    assert_eq!(count("C_Sign"), 1, "C_Sign calls in one `ukey sign`:\n{calls}");
    // The key type comes with the other key attributes: two reads per key (sizes, values).
    assert_eq!(count("C_GetAttributeValue"), 4, "attribute reads in one `ukey sign`:\n{calls}");
    // 47 calls in session 4, 35 now; pkcs11-tool makes 16 (it logs in before it looks).
    assert!(calls.lines().count() <= 35, "{} PKCS#11 calls in one `ukey sign`:\n{calls}", calls.lines().count());
    assert!(!std::fs::read(&sig).unwrap().is_empty());
}
