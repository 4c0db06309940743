//! Tokens as carriers, keys made by ukey, signatures verified by OpenSSL, and the same keys used
//! by OpenSC's pkcs11-tool.

mod common;

use common::{carrier, isolated, openssl_verify, pin, sha256, sha384, so, user};
use ukey_api::crypto::SignData;
use ukey_api::mechanism::MechanismKind;
use ukey_api::{Carrier, CarrierKind, Error, InputForm, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId, SignInput};

fn keygen(label: &str, algorithm: KeyAlgorithm) -> KeyGenRequest {
    KeyGenRequest { algorithm, label: label.into(), id: None }
}

fn input(message: &[u8], mechanism: &Mechanism) -> SignInput {
    let digest = match mechanism {
        Mechanism::EcdsaSha384 => sha384(message),
        Mechanism::RsaPkcs1 { hash } => hash.digest(message),
        _ => sha256(message),
    };
    SignInput { digest, message: Some(message.to_vec()) }
}

#[test]
fn tokens_become_carriers_with_identity_pin_state_and_capabilities() {
    isolated("tokens_become_carriers_with_identity_pin_state_and_capabilities", |rig| {
        let serial_a = rig.init_token("Alpha");
        let serial_b = rig.init_token("Beta");
        let driver = common::driver();
        let carriers = driver.pkcs11_carriers().unwrap();
        // Two tokens and SoftHSM's free slot (an uninitialised token).
        assert_eq!(carriers.len(), 3, "{:?}", carriers.iter().map(|c| c.info().label.clone()).collect::<Vec<_>>());
        let alpha = carrier(&driver, "Alpha");
        let info = alpha.info();
        assert_eq!(info.kind, CarrierKind::Pkcs11);
        assert_eq!(info.serial, serial_a);
        assert_eq!(info.manufacturer, "SoftHSM project");
        assert_eq!(info.model, "SoftHSM v2");
        assert_eq!(info.id.as_str(), format!("pkcs11:softhsm2:{serial_a}"));
        assert!(info.software, "SoftHSM keeps keys in host files");
        assert!(info.initialized && !info.read_only);
        assert!(info.location.contains("libsofthsm2.so slot"), "{}", info.location);
        assert_eq!(carrier(&driver, "Beta").info().serial, serial_b);
        let free = carriers.iter().find(|c| !c.info().initialized).expect("the free slot");
        assert!(free.objects().unwrap().certificates.is_empty());

        // The same token gets the same id from a second enumeration.
        let again = carrier(&driver, "Alpha");
        assert_eq!(again.info().id, info.id);

        let state = alpha.pin_state().unwrap();
        assert!(!state.user.locked && !state.user.count_low && !state.protected_path, "{state:?}");

        // A wrong PIN says what the token's flags are (SoftHSM never locks, but sets COUNT_LOW).
        let err = alpha.verify_pin(ukey_api::PinRole::User, &pin("000000")).unwrap_err();
        match &err {
            Error::WrongPin { detail: Some(detail), .. } => {
                assert!(detail.contains("CKF_USER_PIN_COUNT_LOW"), "{detail}");
            }
            other => panic!("expected WrongPin with flags, got {other:?}"),
        }
        assert!(alpha.pin_state().unwrap().user.count_low);
        alpha.verify_pin(ukey_api::PinRole::User, &user()).unwrap();
        alpha.verify_pin(ukey_api::PinRole::So, &so()).unwrap();

        let caps = alpha.capabilities().unwrap();
        assert_eq!(caps.input_for(MechanismKind::EcdsaSha256), Some(InputForm::Digest));
        assert_eq!(caps.input_for(MechanismKind::RsaPkcs1Sha256), Some(InputForm::Digest));
        assert_eq!(caps.input_for(MechanismKind::RsaPssSha256), Some(InputForm::Digest));
        assert_eq!(caps.input_for(MechanismKind::Sm2Sm3), None, "SoftHSM has no SM2");
        for alg in
            [KeyAlgorithm::P256, KeyAlgorithm::P384, KeyAlgorithm::Rsa { bits: 2048 }, KeyAlgorithm::Rsa { bits: 3072 }]
        {
            assert!(caps.generate.contains(&alg), "{alg} missing from {:?}", caps.generate);
        }
        assert!(!caps.generate.contains(&KeyAlgorithm::Sm2));
        assert!(caps.import_certificate && caps.data_objects && caps.change_pin && caps.unblock_pin);
    });
}

#[test]
fn ukey_keys_sign_and_openssl_verifies() {
    isolated("ukey_keys_sign_and_openssl_verifies", |rig| {
        rig.init_token("Signer");
        let driver = common::driver();
        let token = carrier(&driver, "Signer");
        let cases = [
            (KeyAlgorithm::P256, Mechanism::EcdsaSha256),
            (KeyAlgorithm::P384, Mechanism::EcdsaSha384),
            (KeyAlgorithm::P384, Mechanism::EcdsaSha256),
            (KeyAlgorithm::Rsa { bits: 2048 }, Mechanism::RsaPkcs1Sha256),
            (KeyAlgorithm::Rsa { bits: 2048 }, Mechanism::RsaPssSha256),
            (KeyAlgorithm::Rsa { bits: 3072 }, Mechanism::RsaPkcs1Sha256),
            // DigestInfos programs bring through CKM_RSA_PKCS (pkcs11-tool --test signs SHA-1).
            (KeyAlgorithm::Rsa { bits: 2048 }, Mechanism::RsaPkcs1 { hash: ukey_api::HashAlg::Sha1 }),
            (KeyAlgorithm::Rsa { bits: 2048 }, Mechanism::RsaPkcs1 { hash: ukey_api::HashAlg::Sha512 }),
        ];
        let mut made = std::collections::HashMap::new();
        for (i, (algorithm, mechanism)) in cases.iter().enumerate() {
            let key = made
                .entry(algorithm.name())
                .or_insert_with(|| {
                    token.generate_key(&keygen(&format!("key-{}", algorithm.name()), *algorithm), &user()).unwrap()
                })
                .clone();
            assert_eq!(key.algorithm, *algorithm);
            assert_eq!(key.id.0.len(), 20, "ids derive from the public key");
            let spki = key.public_key.clone().expect("a generated key shows its public key");
            let message = format!("message {i} for {}", mechanism.name());
            let inp = input(message.as_bytes(), mechanism);
            // Twice: SoftHSM invalidates handles on logout, so each signature finds its key again.
            for _ in 0..2 {
                let sig = token.sign(&key.id, mechanism, &inp, &user()).unwrap();
                if let Some(field) = algorithm.ec_field_len() {
                    assert_eq!(sig.len(), 2 * field, "raw r‖s");
                }
                openssl_verify(rig, &spki, mechanism, &inp.digest, &sig);
                ukey_api::crypto::verify_signature(&spki, mechanism, SignData::Message(message.as_bytes()), &sig)
                    .expect("ukey's own verify agrees");
            }
        }
        let listed = token.objects().unwrap();
        assert_eq!(listed.keys.len(), made.len(), "{:?}", listed.keys.iter().map(|k| &k.label).collect::<Vec<_>>());
        for key in made.values() {
            let found = listed.key_for(&key.id).expect("listed");
            assert_eq!(found.label, key.label);
            assert_eq!(found.public_key, key.public_key);
            assert!(!found.mechanisms.is_empty());
        }
        // Labels stay unique.
        let err = token.generate_key(&keygen("key-p256", KeyAlgorithm::P256), &user()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
        // A wrong PIN does not sign.
        let any = made.values().next().unwrap();
        let err = token.sign(&any.id, &Mechanism::EcdsaSha256, &input(b"x", &Mechanism::EcdsaSha256), &pin("999999"));
        assert!(matches!(err, Err(Error::WrongPin { .. }) | Err(Error::NotSupported(_))), "{err:?}");
    });
}

#[test]
fn pkcs11_tool_lists_and_signs_with_a_ukey_key() {
    isolated("pkcs11_tool_lists_and_signs_with_a_ukey_key", |rig| {
        rig.init_token("Cross");
        let driver = common::driver();
        let token = carrier(&driver, "Cross");
        let key = token.generate_key(&keygen("ukey-made", KeyAlgorithm::P256), &user()).unwrap();
        let listing = rig.pkcs11_tool_ok(&["--token-label", "Cross", "--login", "--pin", common::PIN, "-O"]);
        assert!(listing.contains("ukey-made"), "{listing}");
        assert!(listing.contains(&key.id.to_hex()), "{listing}");

        let digest = sha256(b"signed by OpenSC with a key ukey made");
        let dgst = rig.path("dgst");
        let sig = rig.path("sig");
        std::fs::write(&dgst, &digest).unwrap();
        rig.pkcs11_tool_ok(&[
            "--token-label",
            "Cross",
            "--login",
            "--pin",
            common::PIN,
            "--sign",
            "-m",
            "ECDSA",
            "--id",
            &key.id.to_hex(),
            "-i",
            dgst.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ]);
        let raw = std::fs::read(&sig).unwrap();
        assert_eq!(raw.len(), 64);
        // The signature verifies against the public key ukey reported for its key.
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        use p256::pkcs8::DecodePublicKey;
        let verifier = p256::ecdsa::VerifyingKey::from_public_key_der(key.public_key.as_ref().unwrap()).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&raw).unwrap();
        verifier.verify_prehash(&digest, &signature).expect("pkcs11-tool's signature verifies with ukey's public key");
        openssl_verify(rig, key.public_key.as_ref().unwrap(), &Mechanism::EcdsaSha256, &digest, &raw);
        ukey_api::crypto::verify_signature(
            key.public_key.as_ref().unwrap(),
            &Mechanism::EcdsaSha256,
            SignData::Digest(&digest),
            &raw,
        )
        .expect("ukey's verify accepts pkcs11-tool's signature");
    });
}

#[test]
fn a_csr_is_signed_by_the_token_key() {
    isolated("a_csr_is_signed_by_the_token_key", |rig| {
        rig.init_token("Csr");
        let driver = common::driver();
        let token = carrier(&driver, "Csr");
        for algorithm in [KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }] {
            let key = token.generate_key(&keygen(&format!("csr-{}", algorithm.name()), algorithm), &user()).unwrap();
            let credential = user();
            let signer = ukey_api::crypto::CarrierKeySigner::new(
                token.as_ref(),
                key.id.clone(),
                key.public_key.clone().unwrap(),
                &credential,
            )
            .unwrap();
            let pem = ukey_api::crypto::build_csr_pem(&signer, "CN=Token Holder,O=Unit", None).unwrap();
            let info = ukey_api::crypto::verify_csr(pem.as_bytes(), None).expect("the CSR's signature verifies");
            assert!(info.subject.to_string().contains("CN=Token Holder"), "{}", info.subject);
            assert_eq!(info.public_key, key.public_key.clone().unwrap());
            // OpenSSL agrees.
            let file = rig.path(&format!("{}.csr", algorithm.name()));
            std::fs::write(&file, &pem).unwrap();
            let out = rig.run("openssl", &["req", "-in", file.to_str().unwrap(), "-verify", "-noout"]);
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success() && text.contains("verify OK"), "{text}");
        }
    });
}

#[test]
fn ambiguous_ids_and_unsupported_requests_are_refused_clearly() {
    isolated("ambiguous_ids_and_unsupported_requests_are_refused_clearly", |rig| {
        rig.init_token("Edge");
        // Two private keys under one id, made by another client.
        for label in ["twin-a", "twin-b"] {
            rig.pkcs11_tool_ok(&[
                "--token-label",
                "Edge",
                "--login",
                "--pin",
                common::PIN,
                "--keypairgen",
                "--key-type",
                "EC:prime256v1",
                "--id",
                "42",
                "--label",
                label,
            ]);
        }
        let driver = common::driver();
        let token = carrier(&driver, "Edge");
        let err = token
            .sign(&ObjectId(vec![0x42]), &Mechanism::EcdsaSha256, &input(b"m", &Mechanism::EcdsaSha256), &user())
            .unwrap_err();
        match &err {
            Error::Ambiguous { candidates, .. } => {
                assert_eq!(candidates.len(), 2);
                assert!(
                    candidates.iter().any(|c| c.contains("twin-a")) && candidates.iter().any(|c| c.contains("twin-b"))
                );
            }
            other => panic!("expected Ambiguous, got {other:?}"),
        }
        assert!(err.to_string().contains("URI"), "{err}");

        let rsa = token.generate_key(&keygen("rsa", KeyAlgorithm::Rsa { bits: 2048 }), &user()).unwrap();
        let sm2 = Mechanism::parse("sm2-sm3", None).unwrap();
        let err = token.sign(&rsa.id, &sm2, &SignInput { digest: vec![0; 32], message: Some(b"m".to_vec()) }, &user());
        let err = err.unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
        assert!(err.to_string().contains("cannot make sm2-sm3"), "{err}");
        assert!(err.to_string().contains("rsa-pkcs1-sha256"), "{err}");

        // ECDSA asked of an RSA key, and a digest of the wrong length.
        let err = token.sign(&rsa.id, &Mechanism::EcdsaSha256, &input(b"m", &Mechanism::EcdsaSha256), &user());
        assert!(matches!(err, Err(Error::NotSupported(_))), "{err:?}");
        let short = SignInput { digest: vec![1; 20], message: None };
        let err = token.sign(&rsa.id, &Mechanism::RsaPkcs1Sha256, &short, &user());
        assert!(matches!(err, Err(Error::InvalidInput(_))), "{err:?}");
        // SM2 keys cannot be generated without a vendor profile.
        let err = token.generate_key(&keygen("sm2", KeyAlgorithm::Sm2), &user()).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)) && err.to_string().contains("can generate"), "{err}");
        // An id that is not there.
        let err = token
            .sign(&ObjectId(vec![0x77]), &Mechanism::EcdsaSha256, &input(b"m", &Mechanism::EcdsaSha256), &user())
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
    });
}
