//! Certificates and keys written by other PKCS#11 clients, malformed objects, data objects, PIN
//! lifecycle and token initialisation, cross-checked with pkcs11-tool, p11tool and OpenSSL.

mod common;

use common::{PIN, SO_PIN, SOFTHSM, carrier, isolated, openssl_verify, pin, sha256, so, spki_pem, user};
use ukey_api::{
    Carrier, CertificateImport, DataObjectWrite, Error, InitRequest, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId,
    Pin, PinRole, SignInput,
};

/// A certificate for `spki` (made by a throwaway OpenSSL CA), DER.
fn certificate_for(rig: &common::Rig, spki: &[u8], cn: &str) -> Vec<u8> {
    let ca = rig.path("ca.key");
    if !ca.exists() {
        rig.ok(
            "openssl",
            &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ca.to_str().unwrap()],
        );
    }
    let public = rig.path(&format!("{cn}.pub.pem"));
    std::fs::write(&public, spki_pem(spki)).unwrap();
    let out = rig.path(&format!("{cn}.der"));
    rig.ok(
        "openssl",
        &[
            "x509",
            "-new",
            "-force_pubkey",
            public.to_str().unwrap(),
            "-subj",
            &format!("/CN={cn}"),
            "-key",
            ca.to_str().unwrap(),
            "-days",
            "30",
            "-outform",
            "DER",
            "-out",
            out.to_str().unwrap(),
        ],
    );
    std::fs::read(out).unwrap()
}

fn sign_input(message: &[u8]) -> SignInput {
    SignInput { digest: sha256(message), message: Some(message.to_vec()) }
}

#[test]
fn keys_and_certificates_from_other_clients_are_listed_and_sign() {
    isolated("keys_and_certificates_from_other_clients_are_listed_and_sign", |rig| {
        common::require("p11tool", "gnutls-bin");
        rig.init_token("Others");
        let login = ["--token-label", "Others", "--login", "--pin", PIN];
        // OpenSC makes an EC key pair; OpenSSL issues a certificate for it; OpenSC stores it.
        let mut args = login.to_vec();
        args.extend(["--keypairgen", "--key-type", "EC:prime256v1", "--id", "01", "--label", "opensc-key"]);
        rig.pkcs11_tool_ok(&args);
        // GnuTLS makes another.
        rig.ok(
            "p11tool",
            &[
                "--provider",
                SOFTHSM,
                "--login",
                &format!("--set-pin={PIN}"),
                "--generate-privkey=ECDSA",
                "--curve=secp256r1",
                "--label=gnutls-key",
                "pkcs11:token=Others",
            ],
        );
        let driver = common::driver();
        let token = carrier(&driver, "Others");
        let before = token.objects().unwrap();
        let opensc = before.keys.iter().find(|k| k.label == "opensc-key").expect("pkcs11-tool's key is listed").clone();
        let gnutls = before.keys.iter().find(|k| k.label == "gnutls-key").expect("p11tool's key is listed").clone();
        assert_eq!(opensc.id, ObjectId(vec![1]));
        assert_eq!(opensc.algorithm, KeyAlgorithm::P256);

        let cert = certificate_for(rig, opensc.public_key.as_ref().unwrap(), "Opensc Holder");
        let cert_file = rig.path("opensc-cert.der");
        std::fs::write(&cert_file, &cert).unwrap();
        let mut args = login.to_vec();
        args.extend([
            "--write-object",
            cert_file.to_str().unwrap(),
            "--type",
            "cert",
            "--id",
            "01",
            "--label",
            "opensc-cert",
        ]);
        rig.pkcs11_tool_ok(&args);
        // A certificate object whose value is not a certificate, beside the good one. pkcs11-tool
        // refuses to write one (it parses certificates first), so it is made with cryptoki
        // directly, through the module ukey has loaded.
        write_garbage_certificate(&token);

        let listed = token.objects().unwrap();
        assert_eq!(listed.certificates.len(), 1, "{:?}", listed.certificates);
        let c = &listed.certificates[0];
        assert_eq!((c.id.clone(), c.label.as_str()), (ObjectId(vec![1]), "opensc-cert"));
        assert!(c.info.subject.contains("CN=Opensc Holder"), "{}", c.info.subject);
        assert_eq!(
            listed.key_for(&ObjectId(vec![1])).unwrap().certificate.as_deref(),
            Some(c.info.sha256_fingerprint.as_str())
        );
        assert_eq!(listed.problems.len(), 1, "{:?}", listed.problems);
        assert!(
            listed.problems[0].object.contains("broken") && listed.problems[0].object.contains("09"),
            "{:?}",
            listed.problems
        );
        assert!(listed.problems[0].reason.contains("not a usable X.509 certificate"), "{:?}", listed.problems);

        // ukey signs with both keys; OpenSSL verifies with the certificate's key and p11tool's.
        let input = sign_input(b"contract text");
        let sig = token.sign(&opensc.id, &Mechanism::EcdsaSha256, &input, &user()).unwrap();
        openssl_verify(rig, &c.info.public_key, &Mechanism::EcdsaSha256, &input.digest, &sig);
        let sig = token.sign(&gnutls.id, &Mechanism::EcdsaSha256, &input, &user()).unwrap();
        let exported = rig.ok(
            "p11tool",
            &[
                "--provider",
                SOFTHSM,
                "--login",
                &format!("--set-pin={PIN}"),
                "--export-pubkey",
                "pkcs11:token=Others;object=gnutls-key;type=public",
            ],
        );
        assert_eq!(
            exported.trim(),
            spki_pem(gnutls.public_key.as_ref().unwrap()).trim(),
            "ukey and p11tool agree on the key"
        );
        openssl_verify(rig, gnutls.public_key.as_ref().unwrap(), &Mechanism::EcdsaSha256, &input.digest, &sig);
    });
}

/// Stores a `CKO_CERTIFICATE` whose value is garbage (id 09, label `broken`).
fn write_garbage_certificate(token: &ukey_pkcs11::Pkcs11Carrier) {
    use cryptoki::object::{Attribute, CertificateType, ObjectClass};
    use cryptoki::session::UserType;
    let module = token.token().module().clone();
    let session = module.ctx().open_rw_session(token.token().slot()).unwrap();
    session.login(UserType::User, Some(&cryptoki::types::AuthPin::from(PIN.to_string()))).unwrap();
    session
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Label(b"broken".to_vec()),
            Attribute::Id(vec![9]),
            Attribute::Subject(b"\x30\x00".to_vec()),
            Attribute::Value(b"\x30\x82\x01\x00 definitely not a certificate".to_vec()),
        ])
        .unwrap();
    session.logout().unwrap();
}

#[test]
fn pkcs11_tool_test_still_passes_on_a_token_ukey_wrote_to() {
    isolated("pkcs11_tool_test_still_passes_on_a_token_ukey_wrote_to", |rig| {
        rig.init_token("Written");
        let driver = common::driver();
        let token = carrier(&driver, "Written");
        let ec = token
            .generate_key(&KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "ec".into(), id: None }, &user())
            .unwrap();
        // EC keys only: OpenSC 0.23's --test aborts in its RSA-OAEP decryption step on any SoftHSM
        // RSA key, one made by pkcs11-tool itself included.
        let rsa = token
            .generate_key(
                &KeyGenRequest { algorithm: KeyAlgorithm::P384, label: "p384".into(), id: Some(ObjectId(vec![0xAA])) },
                &user(),
            )
            .unwrap();
        assert_eq!(rsa.id, ObjectId(vec![0xAA]));
        let cert = certificate_for(rig, ec.public_key.as_ref().unwrap(), "Written Holder");
        let stored =
            token.import_certificate(&CertificateImport { der: cert.clone(), label: None, id: None }, &user()).unwrap();
        assert_eq!(
            (stored.id.clone(), stored.label.as_str()),
            (ec.id.clone(), "ec"),
            "paired by public key, label from key"
        );
        // Importing it again is a no-op; a certificate for another key under this id is refused.
        token.import_certificate(&CertificateImport { der: cert.clone(), label: None, id: None }, &user()).unwrap();
        let other = certificate_for(rig, rsa.public_key.as_ref().unwrap(), "P384 Holder");
        let err = token
            .import_certificate(
                &CertificateImport { der: other.clone(), label: None, id: Some(ec.id.clone()) },
                &user(),
            )
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
        // A certificate for a key that is not on the token is refused.
        let stranger = rig.path("stranger.key");
        rig.ok(
            "openssl",
            &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", stranger.to_str().unwrap()],
        );
        let spki_der =
            rig.run("openssl", &["pkey", "-in", stranger.to_str().unwrap(), "-pubout", "-outform", "DER"]).stdout;
        let foreign = certificate_for(rig, &spki_der, "Stranger");
        let err =
            token.import_certificate(&CertificateImport { der: foreign, label: None, id: None }, &user()).unwrap_err();
        assert!(err.to_string().contains("matches no key"), "{err}");
        token
            .import_certificate(&CertificateImport { der: other, label: Some("p384-cert".into()), id: None }, &user())
            .unwrap();
        token
            .write_data(
                &DataObjectWrite {
                    label: "custody".into(),
                    application: "ukey".into(),
                    id: None,
                    value: ukey_api::SecretBytes::new(b"holder=alice".to_vec()),
                    private: false,
                },
                &user(),
            )
            .unwrap();

        // OpenSC sees the certificate with subject, issuer and serial, and its self-test passes.
        let listing = rig.pkcs11_tool_ok(&["--token-label", "Written", "-O"]);
        assert!(listing.contains("Certificate Object") && listing.contains("Written Holder"), "{listing}");
        let test = rig.pkcs11_tool_ok(&["--token-label", "Written", "--test", "--login", "--pin", PIN]);
        assert!(test.contains("No errors"), "{test}");
        let listing = rig.ok("p11tool", &["--provider", SOFTHSM, "--list-all-certs", "pkcs11:token=Written"]);
        assert!(listing.contains("Label: p384-cert") && listing.contains("Label: ec"), "{listing}");
    });
}

#[test]
fn data_objects_are_written_replaced_read_and_deleted() {
    isolated("data_objects_are_written_replaced_read_and_deleted", |rig| {
        rig.init_token("Data");
        let driver = common::driver();
        let token = carrier(&driver, "Data");
        let write = |label: &str, app: &str, value: &[u8], private: bool| {
            token
                .write_data(
                    &DataObjectWrite {
                        label: label.into(),
                        application: app.into(),
                        id: None,
                        value: ukey_api::SecretBytes::new(value.to_vec()),
                        private,
                    },
                    &user(),
                )
                .unwrap()
        };
        write("tag", "ukey", b"first", false);
        write("tag", "ukey", b"second", false);
        assert_eq!(token.read_data("tag", None).unwrap().as_slice(), b"second", "replaced, not duplicated");
        let listed = token.objects().unwrap();
        assert_eq!(listed.data.len(), 1);
        assert_eq!((listed.data[0].application.as_str(), listed.data[0].size), ("ukey", Some(6)));

        write("secret", "ukey", b"only with the PIN", true);
        let err = token.read_data("secret", None).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)) && err.to_string().contains("PIN"), "{err}");
        assert_eq!(token.read_data("secret", Some(&user())).unwrap().as_slice(), b"only with the PIN");

        // The same label under another application: reading by label alone is ambiguous.
        write("tag", "other-app", b"third", false);
        let err = token.read_data("tag", None).unwrap_err();
        match &err {
            Error::Ambiguous { candidates, .. } => assert_eq!(candidates.len(), 2, "{candidates:?}"),
            other => panic!("expected Ambiguous, got {other:?}"),
        }
        token.delete_object(&ObjectId(Vec::new()), Some("tag"), &user()).unwrap();
        assert!(matches!(token.read_data("tag", None), Err(Error::NotFound(_))));
        let err = token.delete_object(&ObjectId(vec![5]), None, &user()).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
        // pkcs11-tool reads what ukey wrote.
        let read = rig.pkcs11_tool_ok(&[
            "--token-label",
            "Data",
            "--login",
            "--pin",
            PIN,
            "--read-object",
            "--type",
            "data",
            "--label",
            "secret",
        ]);
        assert!(read.contains("only with the PIN"), "{read}");
    });
}

#[test]
fn pin_change_and_so_unblock_are_honoured_by_pkcs11_tool() {
    isolated("pin_change_and_so_unblock_are_honoured_by_pkcs11_tool", |rig| {
        rig.init_token("Pins");
        let driver = common::driver();
        let token = carrier(&driver, "Pins");
        let login_with =
            |p: &str| rig.pkcs11_tool(&["--token-label", "Pins", "--login", "--pin", p, "-O"]).status.success();

        token.change_pin(PinRole::User, &user(), &Pin::new("24681357").unwrap()).unwrap();
        assert!(login_with("24681357"), "the new PIN works for pkcs11-tool");
        assert!(!login_with(PIN), "the old PIN no longer works");
        // A wrong old PIN changes nothing and says so.
        let err = token.change_pin(PinRole::User, &pin("11112222"), &Pin::new("99990000").unwrap()).unwrap_err();
        assert!(matches!(err, Error::WrongPin { .. }), "{err}");
        // A new PIN outside the token's length rule is refused before it reaches the token.
        let err = token.change_pin(PinRole::User, &pin("24681357"), &Pin::new("1").unwrap()).unwrap_err();
        assert!(matches!(err, Error::PinRejected(_)), "{err}");

        // The helpdesk sets a new user PIN with the SO PIN.
        token.unblock_pin(&so(), &Pin::new("13572468").unwrap()).unwrap();
        assert!(login_with("13572468"));
        assert!(!login_with("24681357"));
        let err = token.unblock_pin(&pin("00000000"), &Pin::new("55556666").unwrap()).unwrap_err();
        match err {
            Error::WrongPin { role: PinRole::So, detail: Some(d), .. } => assert!(d.contains("CKF_SO_PIN"), "{d}"),
            other => panic!("expected a wrong SO PIN, got {other:?}"),
        }
        // The SO PIN itself can change too.
        token.change_pin(PinRole::So, &so(), &Pin::new("87654321").unwrap()).unwrap();
        let so_login = |so_pin: &str| {
            rig.pkcs11_tool(&[
                "--token-label",
                "Pins",
                "--login",
                "--login-type",
                "so",
                "--so-pin",
                so_pin,
                "--init-pin",
                "--new-pin",
                "112233",
            ])
            .status
            .success()
        };
        assert!(!so_login(SO_PIN), "the old SO PIN no longer works");
        assert!(so_login("87654321"), "the new SO PIN works for pkcs11-tool");
        assert!(login_with("112233"));
    });
}

#[test]
fn helpdesk_initialises_a_token() {
    isolated("helpdesk_initialises_a_token", |rig| {
        rig.init_token("Existing");
        let driver = common::driver();
        let free =
            driver.pkcs11_carriers().unwrap().into_iter().find(|c| !c.info().initialized).expect("SoftHSM's free slot");
        let request = InitRequest {
            so_pin: Pin::new("11223344").unwrap(),
            label: "Fresh".into(),
            user_pin: Some(Pin::new("556677").unwrap()),
        };
        free.initialize(&request).unwrap();
        let listing = rig.pkcs11_tool_ok(&["--token-label", "Fresh", "--login", "--pin", "556677", "-O"]);
        let _ = listing;
        let fresh = carrier(&driver, "Fresh");
        assert!(fresh.info().initialized && !fresh.info().serial.is_empty());
        let err = InitRequest { so_pin: Pin::new("11223344").unwrap(), label: "x".repeat(33), user_pin: None };
        assert!(matches!(fresh.initialize(&err), Err(Error::InvalidInput(_))));
        // Re-initialising wipes the keys and needs the right SO PIN.
        fresh
            .generate_key(
                &KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "gone".into(), id: None },
                &pin("556677"),
            )
            .unwrap();
        let wrong = InitRequest { so_pin: Pin::new("00000000").unwrap(), label: "Fresh".into(), user_pin: None };
        assert!(matches!(fresh.initialize(&wrong), Err(Error::WrongPin { role: PinRole::So, .. })));
        fresh
            .initialize(&InitRequest {
                so_pin: Pin::new("11223344").unwrap(),
                label: "Fresh".into(),
                user_pin: Some(Pin::new("556677").unwrap()),
            })
            .unwrap();
        let fresh = carrier(&driver, "Fresh");
        assert!(fresh.objects().unwrap().keys.is_empty(), "keys are wiped");
    });
}

#[test]
fn always_authenticate_keys_get_a_context_specific_login() {
    isolated("always_authenticate_keys_get_a_context_specific_login", |rig| {
        rig.init_token("Always");
        rig.pkcs11_tool_ok(&[
            "--token-label",
            "Always",
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            "0a",
            "--label",
            "every-time",
            "--always-auth",
        ]);
        let driver = common::driver();
        let token = carrier(&driver, "Always");
        let key = token.objects().unwrap().keys.into_iter().find(|k| k.label == "every-time").unwrap();
        let input = sign_input(b"each signature asks again");
        for _ in 0..2 {
            let sig = token.sign(&key.id, &Mechanism::EcdsaSha256, &input, &user()).unwrap();
            openssl_verify(rig, key.public_key.as_ref().unwrap(), &Mechanism::EcdsaSha256, &input.digest, &sig);
        }
    });
}
