//! Two paths to one PIV card agree: ukey's PC/SC driver (its own APDUs) and ukey's PKCS#11
//! driver loading OpenSC's `opensc-pkcs11.so` see the same card serial, keys and certificates;
//! OpenSC's own tools list what ukey imported, sign with a key ukey generated, and agree with
//! ukey on the PIN retry counter after wrong PINs from either side. All through pcscd and vpcd
//! on the virtual PIV card.

mod piv_rig;

use std::collections::BTreeSet;

use piv_rig::{PIN, Rig, insert, lease, opensc_module, s};

/// A ukey config that starts only the PKCS#11 driver with OpenSC's module.
fn opensc_config(rig: &Rig) -> std::path::PathBuf {
    let path = rig.path("ukey-opensc.toml");
    std::fs::write(
        &path,
        format!(
            "drivers = [\"pkcs11\"]\n\n[soft]\nenabled = false\n\n[pkcs11]\np11kit = false\n\n[[pkcs11.modules]]\npath = \"{}\"\n",
            opensc_module().display()
        ),
    )
    .unwrap();
    path
}

/// OpenSC puts at most 16 characters in CK_TOKEN_INFO's serialNumber: the last 8 bytes of the
/// CHUID's GUID in lower-case hex. ukey's PC/SC driver shows the whole GUID. Both name the same
/// card when one ends with the other.
fn same_serial(pcsc: &str, pkcs11: &str) -> bool {
    pkcs11.trim().len() == 16 && pcsc.to_ascii_lowercase().ends_with(&pkcs11.trim().to_ascii_lowercase())
}

/// Certificates (PEM, subject, with-private-key) of the one token `ukey --json certs` shows with
/// a serial matching `serial`.
fn certificates(listing: &serde_json::Value, serial: &str) -> BTreeSet<(String, String, bool)> {
    listing["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .filter(|c| same_serial(serial, c["token_serial"].as_str().unwrap_or_default()) || c["token_serial"] == serial)
        .map(|c| {
            (
                c["pem"].as_str().unwrap_or_default().trim().to_string(),
                c["subject"].as_str().unwrap_or_default().to_string(),
                c["has_private_key"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// The PIV PIN's retries left as OpenSC's `piv-tool` reads them: it sends an empty VERIFY
/// (`00 20 00 80`, which spends no try) and the card answers `63Cx`, x tries left.
fn opensc_tries(rig: &Rig) -> u8 {
    let out = rig.piv_tool(&["-s", "00:20:00:80"]);
    let text = format!("{}{}", out.stdout, out.stderr);
    let sw = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Received (SW1=0x63, SW2=0x"))
        .unwrap_or_else(|| panic!("piv-tool got no 63Cx answer:\n{text}"));
    let sw2 = u8::from_str_radix(sw.trim_end_matches(')').trim(), 16).unwrap_or_else(|_| panic!("SW2 in {text}"));
    assert_eq!(sw2 & 0xF0, 0xC0, "{text}");
    sw2 & 0x0F
}

#[test]
fn pcsc_and_opensc_pkcs11_see_the_same_card_keys_and_certificates() {
    let lease = lease();
    let _card = insert(&lease);
    let rig = Rig::new(&lease);
    let config = opensc_config(&rig);
    let pin = [("UKEY_PIN", PIN)];

    // ukey (PC/SC) makes a P-256 key in 9A and a P-384 key in 9C, each with a certificate.
    let mut issued = Vec::new();
    for (slot, alg, cn) in [("9a", "p256", "Two Paths Auth"), ("9c", "p384", "Two Paths Signer")] {
        rig.ukey(&["keygen", "--alg", alg, "--label", cn, "--id", slot], &pin).ok("ukey keygen");
        let csr = rig.path(&format!("{slot}.csr"));
        rig.ukey(&["csr", "--key", slot, "--subject", &format!("CN={cn}"), "--out", s(&csr)], &pin).ok("ukey csr");
        let crt = rig.issue(&csr, slot);
        rig.ukey(&["cert", "import", s(&crt)], &pin).ok("ukey cert import");
        issued.push((slot, cn, crt));
    }

    // The same serial through both drivers.
    let pcsc = rig.ukey(&["--json", "tokens"], &[]).ok("ukey tokens (pcsc)").json();
    let serial = pcsc["tokens"][0]["serial"].as_str().expect("serial").to_string();
    let p11 = rig.ukey_with_config(&config, &["--json", "tokens"], &[]).ok("ukey tokens (pkcs11)").json();
    let p11_token = p11["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| same_serial(&serial, t["serial"].as_str().unwrap_or_default()))
        .unwrap_or_else(|| panic!("OpenSC shows no token with serial {serial}: {p11}"))
        .clone();
    assert_eq!(p11_token["kind"], "pkcs11", "{p11_token}");
    let p11_serial = p11_token["serial"].as_str().unwrap().to_string();

    // The same certificates, each with its private key.
    let by_pcsc = certificates(&rig.ukey(&["--json", "certs"], &[]).ok("ukey certs (pcsc)").json(), &serial);
    let by_p11 = certificates(
        &rig.ukey_with_config(&config, &["--json", "certs", "--token", &p11_serial], &[])
            .ok("ukey certs (pkcs11)")
            .json(),
        &serial,
    );
    assert_eq!(by_pcsc.len(), 2, "{by_pcsc:?}");
    assert_eq!(by_pcsc, by_p11, "PC/SC and OpenSC's PKCS#11 module list the same certificates");

    // The same keys: algorithm and certificate per key, and the same public key per slot
    // (OpenSC numbers the PIV slots 9A, 9C, 9D, 9E as ids 01 to 04).
    let pcsc_keys = rig.ukey(&["--json", "keys"], &[]).ok("ukey keys (pcsc)").json();
    let p11_keys =
        rig.ukey_with_config(&config, &["--json", "keys", "--token", &p11_serial], &[]).ok("ukey keys").json();
    let summary = |v: &serde_json::Value| -> BTreeSet<(String, String)> {
        v["keys"]
            .as_array()
            .unwrap_or_else(|| panic!("keys: {v}"))
            .iter()
            .map(|k| (k["algorithm"].to_string(), k["certificate_subject"].to_string()))
            .collect()
    };
    assert_eq!(summary(&pcsc_keys).len(), 2, "{pcsc_keys}");
    assert_eq!(summary(&pcsc_keys), summary(&p11_keys), "the same keys:\n{pcsc_keys}\n{p11_keys}");
    for (slot, opensc_id) in [("9a", "01"), ("9c", "02")] {
        let by_pcsc = rig.ukey(&["pubkey", "--key", slot], &[]).ok("ukey pubkey (pcsc)").stdout;
        let by_p11 = rig
            .ukey_with_config(&config, &["pubkey", "--token", &p11_serial, "--key", opensc_id], &[])
            .ok("ukey pubkey (pkcs11)")
            .stdout;
        assert_eq!(by_pcsc.trim(), by_p11.trim(), "the public key in {slot}");
    }

    // pkcs11-tool lists the certificate ukey imported.
    let objects = rig.pkcs11_tool(&["-O"]).ok("pkcs11-tool -O");
    for (_, cn, _) in &issued {
        assert!(objects.stdout.contains(cn), "pkcs11-tool -O lists {cn}:\n{}", objects.stdout);
    }

    // pkcs11-tool signs with the key ukey generated in 9A (OpenSC id 01); ukey verifies it.
    let msg = rig.path("msg");
    std::fs::write(&msg, b"signed by OpenSC with a key ukey generated").unwrap();
    let digest = rig.path("msg.sha256");
    std::fs::write(&digest, sha256(b"signed by OpenSC with a key ukey generated")).unwrap();
    let sig = rig.path("opensc.sig");
    rig.pkcs11_tool(&[
        "--login",
        "--pin",
        PIN,
        "--sign",
        "--id",
        "01",
        "-m",
        "ECDSA",
        "--signature-format",
        "openssl",
        "-i",
        s(&digest),
        "-o",
        s(&sig),
    ])
    .ok("pkcs11-tool --sign");
    let cert_9a = &issued[0].2;
    rig.ukey(&["verify", "--cert", s(cert_9a), "--sig", s(&sig), "--in", s(&msg)], &[]).ok("ukey verify");
    // The check can fail: the other slot's certificate does not verify it.
    let wrong = rig.ukey(&["verify", "--cert", s(&issued[1].2), "--sig", s(&sig), "--in", s(&msg)], &[]);
    assert_ne!(wrong.code, Some(0), "the 9C certificate must not verify 9A's signature: {}", wrong.stdout);
}

#[test]
fn retry_counters_agree_between_ukey_and_opensc() {
    let lease = lease();
    let card = insert(&lease);
    let rig = Rig::new(&lease);
    let config = opensc_config(&rig);
    let msg = rig.path("msg");
    std::fs::write(&msg, b"x").unwrap();
    rig.ukey(&["keygen", "--alg", "p256", "--label", "k", "--id", "9a"], &[("UKEY_PIN", PIN)]).ok("ukey keygen");
    let serial = rig.ukey(&["--json", "tokens"], &[]).ok("ukey tokens").json()["tokens"][0]["serial"]
        .as_str()
        .expect("serial")
        .to_string();
    // ukey's view through its own APDUs: (retries left, final try).
    let by_pcsc = |rig: &Rig| -> (u64, bool) {
        let status = rig.ukey(&["--json", "pin", "status"], &[]).ok("ukey pin status").json();
        let user = &status["tokens"][0]["pin"]["user"];
        (user["retries_left"].as_u64().unwrap_or_else(|| panic!("{status}")), user["final_try"] == true)
    };
    // ukey's view through OpenSC's PKCS#11 module: (count low, final try, locked).
    let by_pkcs11 = |rig: &Rig| -> (bool, bool, bool) {
        let status =
            rig.ukey_with_config(&config, &["--json", "pin", "status"], &[]).ok("ukey pin status (pkcs11)").json();
        let token = status["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .find(|t| same_serial(&serial, t["serial"].as_str().unwrap_or_default()))
            .unwrap_or_else(|| panic!("no token {serial}: {status}"))
            .clone();
        let user = &token["pin"]["user"];
        (user["count_low"] == true, user["final_try"] == true, user["locked"] == true)
    };
    assert_eq!((by_pcsc(&rig), opensc_tries(&rig)), ((3, false), 3));

    // A wrong PIN through ukey: ukey and piv-tool both read 2 left.
    rig.ukey(&["sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", "999999")]).code(3, "wrong PIN (ukey)");
    assert_eq!((by_pcsc(&rig), opensc_tries(&rig)), ((2, false), 2));

    // A wrong PIN through OpenSC's PKCS#11 module: both read 1 left, ukey flags the final try,
    // and ukey's PKCS#11 driver on OpenSC sees the token still usable (not locked).
    let refused = rig.pkcs11_tool(&["--login", "--pin", "999999", "-O"]);
    assert_ne!(refused.code, Some(0), "pkcs11-tool accepted a wrong PIN");
    assert_eq!(card.slot().card.pin_tries_left(), 1, "the card counted it");
    assert_eq!((by_pcsc(&rig), opensc_tries(&rig)), ((1, true), 1));
    assert!(!by_pkcs11(&rig).2, "one try is left: not locked");

    // The right PIN through OpenSC resets the counter for ukey too.
    rig.pkcs11_tool(&["--login", "--pin", PIN, "-O"]).ok("pkcs11-tool with the right PIN");
    assert_eq!((by_pcsc(&rig), opensc_tries(&rig)), ((3, false), 3));

    // Blocked through ukey: OpenSC's PKCS#11 module refuses the right PIN, and reports the lock
    // as ukey's PKCS#11 driver shows it.
    for _ in 0..3 {
        rig.ukey(&["sign", "--key", "9a", "--in", s(&msg)], &[("UKEY_PIN", "999999")]).code(3, "wrong PIN");
    }
    assert_eq!(by_pcsc(&rig).0, 0);
    let blocked = rig.pkcs11_tool(&["--login", "--pin", PIN, "-O"]);
    assert_ne!(blocked.code, Some(0), "OpenSC must not log in with a blocked PIN");
    assert!(
        format!("{}{}", blocked.stdout, blocked.stderr).contains("CKR_PIN_LOCKED"),
        "OpenSC says the PIN is locked: {}{}",
        blocked.stdout,
        blocked.stderr
    );
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}
