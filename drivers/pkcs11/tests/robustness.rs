//! Robustness: kept logins with handles that go stale, one token used from many threads, tokens
//! that come and go (hot-plug events, `TokenRemoved`, recovery), and the vendor SM2 path's
//! plumbing on SoftHSM.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{PIN, SOFTHSM, carrier, isolated, openssl_verify, sha256, user};
use ukey_api::{
    Carrier, CarrierEvent, Driver, Error, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId, PinRole, SignInput,
};
use ukey_pkcs11::{ModuleConfig, Pkcs11Config, Pkcs11Driver, Sm2Input, Sm2VendorConfig};

fn input(message: &[u8]) -> SignInput {
    SignInput { digest: sha256(message), message: Some(message.to_vec()) }
}

fn driver_with(options: impl FnOnce(&mut ModuleConfig)) -> Pkcs11Driver {
    let mut module = ModuleConfig::new(SOFTHSM.into());
    options(&mut module);
    Pkcs11Driver::new(&Pkcs11Config {
        modules: vec![module],
        p11kit: false,
        poll_interval_ms: 100,
        ..Default::default()
    })
}

/// Waits for a condition with a bounded deadline (no sleeps as synchronisation).
fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_kept_login_finds_a_replaced_key_again() {
    isolated("a_kept_login_finds_a_replaced_key_again", |rig| {
        rig.init_token("Kept");
        let driver = driver_with(|m| m.keep_login = true);
        let token = carrier(&driver, "Kept");
        let first = token
            .generate_key(
                &KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "rotating".into(), id: Some(ObjectId(vec![7])) },
                &user(),
            )
            .unwrap();
        let sig = token.sign(&first.id, &Mechanism::EcdsaSha256, &input(b"one"), &user()).unwrap();
        openssl_verify(rig, first.public_key.as_ref().unwrap(), &Mechanism::EcdsaSha256, &sha256(b"one"), &sig);
        // The login is kept: no PIN is checked for the next signature.
        let sig = token.sign(&first.id, &Mechanism::EcdsaSha256, &input(b"two"), &common::pin("not-checked")).unwrap();
        openssl_verify(rig, first.public_key.as_ref().unwrap(), &Mechanism::EcdsaSha256, &sha256(b"two"), &sig);

        // Another application replaces the key under the same id; the cached handle goes stale.
        let login = ["--token-label", "Kept", "--login", "--pin", PIN];
        let mut args = login.to_vec();
        args.extend(["--delete-object", "--type", "privkey", "--id", "07"]);
        rig.pkcs11_tool_ok(&args);
        let mut args = login.to_vec();
        args.extend(["--delete-object", "--type", "pubkey", "--id", "07"]);
        rig.pkcs11_tool_ok(&args);
        let mut args = login.to_vec();
        args.extend(["--keypairgen", "--key-type", "EC:prime256v1", "--id", "07", "--label", "rotated"]);
        rig.pkcs11_tool_ok(&args);

        let sig = token.sign(&first.id, &Mechanism::EcdsaSha256, &input(b"three"), &user()).unwrap();
        let now = token.objects().unwrap().keys.into_iter().find(|k| k.id == first.id).unwrap();
        assert_eq!(now.label, "rotated");
        assert_ne!(now.public_key, first.public_key);
        openssl_verify(rig, now.public_key.as_ref().unwrap(), &Mechanism::EcdsaSha256, &sha256(b"three"), &sig);
        // A PIN check never stands in for a kept login.
        let err = token.verify_pin(PinRole::User, &common::pin("000000")).unwrap_err();
        assert!(matches!(err, Error::WrongPin { .. }), "{err}");
    });
}

#[test]
fn one_token_serves_many_threads() {
    isolated("one_token_serves_many_threads", |rig| {
        rig.init_token("Busy");
        let driver = common::driver();
        let key = carrier(&driver, "Busy")
            .generate_key(&KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "shared".into(), id: None }, &user())
            .unwrap();
        let spki = key.public_key.clone().unwrap();
        let results = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|scope| {
            for t in 0..4 {
                // Each thread enumerates on its own: carrier objects for one token share its state.
                let driver = driver.clone();
                let results = results.clone();
                let id = key.id.clone();
                scope.spawn(move || {
                    let token = carrier(&driver, "Busy");
                    for i in 0..5 {
                        let msg = format!("thread {t} message {i}");
                        let sig = token.sign(&id, &Mechanism::EcdsaSha256, &input(msg.as_bytes()), &user()).unwrap();
                        results.lock().unwrap().push((sha256(msg.as_bytes()), sig));
                    }
                });
            }
        });
        let results = results.lock().unwrap();
        assert_eq!(results.len(), 20);
        for (digest, sig) in results.iter() {
            openssl_verify(rig, &spki, &Mechanism::EcdsaSha256, digest, sig);
        }
    });
}

#[test]
fn hot_plug_events_for_tokens_that_come_and_go() {
    // SoftHSM fixes its slot list at C_Initialize: a token made by another process never shows
    // up, and one deleted by another process stays listed but answers CKR_GENERAL_ERROR. So the
    // new token is made in-process (ukey initialises SoftHSM's free slot, and SoftHSM adds a
    // new free slot), and the removal is an external delete, which ukey sees as the token
    // becoming unreadable.
    isolated("hot_plug_events_for_tokens_that_come_and_go", |rig| {
        let serial = rig.init_token("Plug");
        let driver = driver_with(|_| {});
        let events: Arc<Mutex<Vec<CarrierEvent>>> = Arc::default();
        let sink_events = events.clone();
        let watch = driver.watch(Arc::new(move |e| sink_events.lock().unwrap().push(e))).unwrap();
        let id = format!("pkcs11:softhsm2:{serial}");
        let seen = |pred: &dyn Fn(&CarrierEvent) -> bool| events.lock().unwrap().iter().any(pred);
        assert!(
            seen(&|e| matches!(e, CarrierEvent::Inserted { info } if info.id.as_str() == id)),
            "present tokens are reported at once"
        );
        let initial = events.lock().unwrap().len();
        assert_eq!(initial, 2, "Plug and the free slot: {:?}", events.lock().unwrap());

        // A new token appears.
        let free = driver.pkcs11_carriers().unwrap().into_iter().find(|c| !c.info().initialized).unwrap();
        free.initialize(&ukey_api::InitRequest {
            so_pin: ukey_api::Pin::new(common::SO_PIN).unwrap(),
            label: "Second".into(),
            user_pin: Some(ukey_api::Pin::new(PIN).unwrap()),
        })
        .unwrap();
        wait_for("the new token's Inserted event", Duration::from_secs(10), || {
            seen(&|e| matches!(e, CarrierEvent::Inserted { info } if info.label == "Second"))
        });

        // The first token goes away.
        let token = carrier(&driver, "Plug");
        token.verify_pin(PinRole::User, &user()).unwrap();
        rig.ok("softhsm2-util", &["--delete-token", "--serial", &serial]);
        wait_for("the Removed event", Duration::from_secs(10), || {
            seen(&|e| matches!(e, CarrierEvent::Removed { id: gone } if gone.as_str() == id))
        });
        assert!(token.verify_pin(PinRole::User, &user()).is_err());
        // The other token is untouched.
        carrier(&driver, "Second").verify_pin(PinRole::User, &user()).unwrap();
        drop(watch);
        // Dropping the watch stops its thread: no more events arrive.
        let count = events.lock().unwrap().len();
        carrier(&driver, "Second").verify_pin(PinRole::User, &user()).unwrap();
        assert_eq!(events.lock().unwrap().len(), count);
    });
}

#[test]
fn vendor_sm2_settings_reach_the_token_through_the_raw_path() {
    // SoftHSM has no SM2 mechanism, so a real vendor SM2 signature cannot be made here. This test
    // drives the configured-vendor-mechanism plumbing end to end with numbers SoftHSM does have:
    // an EC key on the SM2 curve (CKK_EC + the SM2 OID, which SoftHSM's OpenSSL can generate),
    // "SM2" signing mapped to CKM_ECDSA (0x1041) over the SM3(Z‖M) digest. What it proves: the
    // profile is resolved, the mechanism is checked with C_GetMechanismInfo, keys on the SM2
    // curve are recognised as SM2, the core's digest reaches C_Sign through the raw calls, and
    // the answer comes back as raw r‖s. What it cannot prove: SM2 signature semantics.
    isolated("vendor_sm2_settings_reach_the_token_through_the_raw_path", |rig| {
        rig.init_token("Vendor");
        let sm2 = Sm2VendorConfig {
            sign_mechanism: Some(0x1041),
            keygen_mechanism: Some(0x1040),
            input: Some(Sm2Input::Digest),
            ..Default::default()
        };
        let driver = driver_with(|m| m.sm2 = Some(sm2));
        let report = &driver.modules()[0];
        assert_eq!(report.sm2_profile.as_deref(), Some("custom"));
        let token = carrier(&driver, "Vendor");
        let caps = token.capabilities().unwrap();
        assert!(caps.generate.contains(&KeyAlgorithm::Sm2), "{:?}", caps.generate);
        let key = token
            .generate_key(&KeyGenRequest { algorithm: KeyAlgorithm::Sm2, label: "sm2".into(), id: None }, &user())
            .unwrap();
        assert_eq!(key.algorithm, KeyAlgorithm::Sm2);
        assert_eq!(
            ukey_api::crypto::keyinfo::spki_algorithm(key.public_key.as_ref().unwrap()).unwrap(),
            KeyAlgorithm::Sm2
        );
        let listed = token.objects().unwrap();
        let k = listed.key_for(&key.id).unwrap();
        assert!(k.mechanisms.contains(&ukey_api::mechanism::MechanismKind::Sm2Sm3), "{:?}", k.mechanisms);

        let mechanism = Mechanism::parse("sm2-sm3", None).unwrap();
        let sig =
            token.sign(&key.id, &mechanism, &SignInput { digest: vec![0x5A; 32], message: None }, &user()).unwrap();
        assert_eq!(sig.len(), 64, "raw r‖s");
        let err =
            token.sign(&key.id, &mechanism, &SignInput { digest: vec![0x5A; 20], message: None }, &user()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");

        // A vendor number the token does not offer: SM2 is reported unavailable, clearly.
        let absent = Sm2VendorConfig { profile: Some("sw-sm2-digest".into()), ..Default::default() };
        drop(token);
        drop(driver);
        let driver = driver_with(|m| m.sm2 = Some(absent));
        let token = carrier(&driver, "Vendor");
        let err =
            token.sign(&key.id, &mechanism, &SignInput { digest: vec![0x5A; 32], message: None }, &user()).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "{err}");
        assert!(err.to_string().contains("0x80008104"), "{err}");
    });
}

/// What a key generation finds under the new key's label when an earlier one was cut short: a
/// leftover that ukey's note of a generation in progress vouches for is removed and the
/// generation goes ahead; a lone half that no note vouches for (made by another program) is named
/// for what it is, with the command that removes it, and kept.
#[test]
fn leftovers_of_an_interrupted_generation_are_removed_or_named() {
    isolated("leftovers_of_an_interrupted_generation_are_removed_or_named", |rig| {
        rig.init_token("Halves");
        let login = ["--token-label", "Halves", "--login", "--pin", PIN];
        let tool = |extra: &[&str]| {
            let mut args = login.to_vec();
            args.extend_from_slice(extra);
            rig.pkcs11_tool_ok(&args)
        };
        // A private key without its public key or a certificate, and no note.
        tool(&["--keypairgen", "--key-type", "EC:prime256v1", "--id", "0a", "--label", "half"]);
        tool(&["--delete-object", "--type", "pubkey", "--id", "0a"]);
        // A whole pair with ukey's note: a generation that the token lost before it completed.
        tool(&["--keypairgen", "--key-type", "EC:prime256v1", "--id", "0b", "--label", "noted"]);
        let note = rig.path("note");
        std::fs::write(&note, [0x0b]).unwrap();
        let note = note.display().to_string();
        tool(&[
            "--write-object",
            &note,
            "--type",
            "data",
            "--label",
            "noted",
            "--application-label",
            ukey_pkcs11::pending::APPLICATION,
        ]);

        let driver = driver_with(|_| {});
        let token = carrier(&driver, "Halves");
        let request = |label: &str| KeyGenRequest { algorithm: KeyAlgorithm::P256, label: label.into(), id: None };

        let err = token.generate_key(&request("half"), &user()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert!(
            text.contains("a private key labelled `half` (id 0a) has no public key and no certificate")
                && text.contains("half-made key pair")
                && text.contains("--delete-object --type privkey --label half"),
            "{text}"
        );
        let listing = tool(&["--list-objects"]);
        assert!(listing.contains("label:      half"), "the lone half was removed:\n{listing}");

        let key = token.generate_key(&request("noted"), &user()).unwrap();
        assert_ne!(key.id, ObjectId(vec![0x0b]), "the leftover pair was kept");
        let sig = token.sign(&key.id, &Mechanism::EcdsaSha256, &input(b"noted"), &user()).unwrap();
        openssl_verify(rig, key.public_key.as_ref().unwrap(), &Mechanism::EcdsaSha256, &sha256(b"noted"), &sig);
        let listing = tool(&["--list-objects"]);
        assert_eq!(listing.matches("label:      noted").count(), 2, "one new pair labelled noted:\n{listing}");
        assert!(!listing.contains("ID:         0b"), "the leftover pair is still there:\n{listing}");
        assert!(!listing.contains("key generation in progress"), "the note is still there:\n{listing}");
    });
}
