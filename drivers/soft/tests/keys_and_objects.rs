//! Keys, signatures, certificates and data objects on the soft token, with signatures checked
//! by the core's verifier and by the OpenSSL command line.

mod common;

use std::process::Command;

use common::*;
use ukey_api::crypto::{
    CarrierKeySigner, CertificateOptions, SignData, SoftwareKey, parse_name, prepare_input, raw_to_der, self_signed,
    verify_signature,
};
use ukey_api::mechanism::MechanismKind;
use ukey_api::{
    Carrier, CertificateImport, DataObjectWrite, Error, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId, PinRole,
    SecretBytes, SignInput,
};
use ukey_soft::SoftToken;

fn keygen(token: &SoftToken, alg: KeyAlgorithm, label: &str) -> ukey_api::KeyObject {
    token.generate_key(&KeyGenRequest { algorithm: alg, label: label.into(), id: None }, &user()).unwrap()
}

fn sign_message(token: &SoftToken, key: &ukey_api::KeyObject, mechanism: &Mechanism, message: &[u8]) -> Vec<u8> {
    let spki = key.public_key.as_deref().unwrap();
    let input = prepare_input(mechanism, Some(spki), SignData::Message(message)).unwrap();
    token.sign(&key.id, mechanism, &input, &user()).unwrap()
}

#[test]
fn every_algorithm_generates_signs_and_verifies() {
    let fx = Fixture::new();
    let token = fx.token("signer");
    let cases: [(KeyAlgorithm, Mechanism, Option<usize>); 5] = [
        (KeyAlgorithm::Sm2, KeyAlgorithm::Sm2.default_mechanism(), Some(64)),
        (KeyAlgorithm::P256, Mechanism::EcdsaSha256, Some(64)),
        (KeyAlgorithm::P384, Mechanism::EcdsaSha384, Some(96)),
        (KeyAlgorithm::Rsa { bits: 2048 }, Mechanism::RsaPkcs1Sha256, None),
        (KeyAlgorithm::Rsa { bits: 2048 }, Mechanism::RsaPssSha256, None),
    ];
    for (alg, mechanism, raw_len) in cases {
        let key = keygen(&token, alg, &format!("{alg}-{}", mechanism.name()));
        assert_eq!(key.algorithm, alg);
        assert_eq!(key.id.0.len(), 20, "ids are 20 bytes of SHA-256 over the public key");
        assert!(key.mechanisms.contains(&mechanism.kind()));
        let signature = sign_message(&token, &key, &mechanism, b"hello soft token");
        assert_eq!(signature.len(), raw_len.unwrap_or(256), "{alg}: raw r||s or the RSA block");
        verify_signature(
            key.public_key.as_deref().unwrap(),
            &mechanism,
            SignData::Message(b"hello soft token"),
            &signature,
        )
        .unwrap_or_else(|e| panic!("{alg} {mechanism}: {e}"));
        assert!(
            verify_signature(key.public_key.as_deref().unwrap(), &mechanism, SignData::Message(b"other"), &signature)
                .is_err()
        );
    }
    let listed = token.objects().unwrap();
    assert_eq!(listed.keys.len(), 5);
    assert_eq!(token.pin_state().unwrap().user.retries_left, Some(6));
}

#[test]
fn a_signature_needs_the_right_pin_and_a_usable_key_and_mechanism() {
    let fx = Fixture::new();
    let token = fx.token("picky");
    let key = keygen(&token, KeyAlgorithm::P256, "p256");
    let input = SignInput { digest: vec![7; 32], message: None };
    let err = token.sign(&key.id, &Mechanism::EcdsaSha256, &input, &cred("wrong-pin")).unwrap_err();
    assert!(matches!(err, Error::WrongPin { retries_left: Some(5), .. }), "{err:?}");
    let err = token.sign(&ObjectId(vec![9; 20]), &Mechanism::EcdsaSha256, &input, &user()).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let sm2 = KeyAlgorithm::Sm2.default_mechanism();
    let err = token.sign(&key.id, &sm2, &input, &user()).unwrap_err();
    assert!(matches!(err, Error::NotSupported(_)) && err.to_string().contains("ecdsa-sha256"), "{err}");
    let short = SignInput { digest: vec![7; 20], message: None };
    let err = token.sign(&key.id, &Mechanism::EcdsaSha256, &short, &user()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert_eq!(token.pin_state().unwrap().user.retries_left, Some(5), "refusals before the PIN check spend nothing");
    for _ in 0..5 {
        let _ = token.verify_pin(PinRole::User, &cred("wrong-pin"));
    }
    let err = token.sign(&key.id, &Mechanism::EcdsaSha256, &input, &user()).unwrap_err();
    assert!(matches!(err, Error::PinLocked { .. }), "a locked PIN signs nothing: {err:?}");
}

#[test]
fn unsupported_algorithms_are_refused_with_the_supported_list() {
    let fx = Fixture::new();
    let token = fx.token("algs");
    let err = token
        .generate_key(
            &KeyGenRequest { algorithm: KeyAlgorithm::Rsa { bits: 1024 }, label: "weak".into(), id: None },
            &user(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
    let text = err.to_string();
    for name in ["sm2", "p256", "p384", "rsa2048"] {
        assert!(text.contains(name), "the message lists {name}: {text}");
    }
    let err = "ed25519".parse::<KeyAlgorithm>().unwrap_err();
    assert!(err.to_string().contains("sm2, p256"), "{err}");
    assert_eq!(token.pin_state().unwrap().user.retries_left, Some(6), "nothing was tried");
    assert!(token.objects().unwrap().keys.is_empty());
}

#[test]
fn caller_chosen_ids_are_kept_and_never_duplicated() {
    let fx = Fixture::new();
    let token = fx.token("ids");
    let id = ObjectId(vec![0x01]);
    let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "first".into(), id: Some(id.clone()) };
    assert_eq!(token.generate_key(&request, &user()).unwrap().id, id);
    let err = token.generate_key(&request, &user()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("already holds"), "{err}");
    assert_eq!(token.objects().unwrap().keys.len(), 1);
}

#[test]
fn a_certificate_pairs_with_its_key_and_one_for_another_key_is_refused() {
    let fx = Fixture::new();
    let token = fx.token("certs");
    let key = keygen(&token, KeyAlgorithm::Sm2, "holder");
    let auth = user();
    let signer = CarrierKeySigner::new(&token, key.id.clone(), key.public_key.clone().unwrap(), &auth).unwrap();
    let subject = parse_name("CN=Holder,O=ukey").unwrap();
    let cert = self_signed(&signer, &subject, &CertificateOptions::end_entity(30)).unwrap();

    let stranger = SoftwareKey::generate(KeyAlgorithm::Sm2).unwrap();
    let foreign =
        self_signed(&stranger, &parse_name("CN=Stranger").unwrap(), &CertificateOptions::end_entity(30)).unwrap();
    let err =
        token.import_certificate(&CertificateImport { der: foreign, label: None, id: None }, &user()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("matches no key"), "{err}");
    let err = token
        .import_certificate(&CertificateImport { der: b"not a certificate".to_vec(), label: None, id: None }, &user())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert!(token.objects().unwrap().certificates.is_empty());

    let imported =
        token.import_certificate(&CertificateImport { der: cert.clone(), label: None, id: None }, &user()).unwrap();
    assert_eq!(imported.id, key.id, "the certificate takes its key's id");
    assert_eq!(imported.label, "holder", "the label defaults to the key's");
    let listed = token.objects().unwrap();
    assert_eq!(listed.certificates.len(), 1);
    assert_eq!(listed.keys[0].certificate.as_deref(), Some(imported.info.sha256_fingerprint.as_str()));
    assert_eq!(listed.certificate_for(&key.id).unwrap().info.subject_cn(), "Holder");

    // Importing again (a renewal) replaces it; a wrong explicit id is refused.
    let pem = ukey_api::crypto::pem::certificate_pem(&cert).unwrap();
    let again = CertificateImport { der: pem.into_bytes(), label: Some("renewed".into()), id: None };
    token.import_certificate(&again, &user()).unwrap();
    let listed = token.objects().unwrap();
    assert_eq!((listed.certificates.len(), listed.certificates[0].label.as_str()), (1, "renewed"));
    let wrong_id = CertificateImport { der: cert, label: None, id: Some(ObjectId(vec![1, 2, 3])) };
    assert!(matches!(token.import_certificate(&wrong_id, &user()), Err(Error::InvalidInput(_))));
}

#[test]
fn data_objects_public_private_replace_and_delete() {
    let fx = Fixture::new();
    let token = fx.token("data");
    let write = |label: &str, value: &[u8], private: bool| {
        let request = DataObjectWrite {
            label: label.into(),
            application: "custody".into(),
            id: None,
            value: SecretBytes::new(value.to_vec()),
            private,
        };
        token.write_data(&request, &user()).unwrap()
    };
    write("public-tag", b"holder=alice", false);
    write("private-note", b"for alice only", true);
    assert_eq!(token.read_data("public-tag", None).unwrap().as_slice(), b"holder=alice");
    assert!(matches!(token.read_data("private-note", None), Err(Error::LoginRequired(PinRole::User))));
    assert!(matches!(token.read_data("private-note", Some(&cred("bad-pin"))), Err(Error::WrongPin { .. })));
    assert_eq!(token.read_data("private-note", Some(&user())).unwrap().as_slice(), b"for alice only");
    let file = std::fs::read(token.path()).unwrap();
    assert!(!file.windows(14).any(|w| w == b"for alice only"), "private data is encrypted at rest");
    let listed = token.objects().unwrap();
    assert_eq!(listed.data.len(), 2);
    assert!(listed.data.iter().any(|d| d.label == "private-note" && d.private && d.size == Some(14)));

    write("public-tag", b"holder=bob", false);
    assert_eq!(token.read_data("public-tag", None).unwrap().as_slice(), b"holder=bob");
    assert_eq!(token.objects().unwrap().data.len(), 2, "writing a label again replaces it");

    token.delete_object(&ObjectId(Vec::new()), Some("public-tag"), &user()).unwrap();
    assert!(matches!(token.read_data("public-tag", None), Err(Error::NotFound(_))));
    let err = token.delete_object(&ObjectId(Vec::new()), Some("public-tag"), &user()).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

#[test]
fn deleting_a_key_takes_its_certificate_with_it() {
    let fx = Fixture::new();
    let token = fx.token("deleter");
    let key = keygen(&token, KeyAlgorithm::P256, "gone");
    let keep = keygen(&token, KeyAlgorithm::P256, "kept");
    let auth = user();
    let signer = CarrierKeySigner::new(&token, key.id.clone(), key.public_key.clone().unwrap(), &auth).unwrap();
    let cert = self_signed(&signer, &parse_name("CN=Gone").unwrap(), &CertificateOptions::end_entity(1)).unwrap();
    token.import_certificate(&CertificateImport { der: cert, label: None, id: None }, &user()).unwrap();
    let err = token.delete_object(&key.id, None, &cred("wrong-pin")).unwrap_err();
    assert!(matches!(err, Error::WrongPin { .. }));
    assert_eq!(token.objects().unwrap().keys.len(), 2, "a refused delete deletes nothing");
    token.delete_object(&key.id, None, &user()).unwrap();
    let listed = token.objects().unwrap();
    assert_eq!(listed.keys.iter().map(|k| k.id.clone()).collect::<Vec<_>>(), [keep.id]);
    assert!(listed.certificates.is_empty());
    let err = token.sign(&key.id, &Mechanism::EcdsaSha256, &SignInput { digest: vec![0; 32], message: None }, &user());
    assert!(matches!(err, Err(Error::NotFound(_))));
}

#[test]
fn keys_survive_pin_changes_and_unblock_because_only_the_master_key_is_rewrapped() {
    let fx = Fixture::new();
    let token = fx.token("rewrap");
    let key = keygen(&token, KeyAlgorithm::Sm2, "sm2");
    let before = std::fs::read_to_string(token.path()).unwrap();
    token.change_pin(PinRole::User, &user(), &pin("changed-1")).unwrap();
    let after = std::fs::read_to_string(token.path()).unwrap();
    let sealed_key = |text: &str| {
        let start = text.find("\"private_key\"").unwrap();
        text[start..start + 200].to_string()
    };
    assert_eq!(sealed_key(&before), sealed_key(&after), "the sealed key itself is untouched by a PIN change");
    let mechanism = KeyAlgorithm::Sm2.default_mechanism();
    let spki = key.public_key.clone().unwrap();
    let input = prepare_input(&mechanism, Some(&spki), SignData::Message(b"m")).unwrap();
    token.sign(&key.id, &mechanism, &input, &cred("changed-1")).unwrap();
    token.unblock_pin(&so(), &pin("changed-2")).unwrap();
    let sig = token.sign(&key.id, &mechanism, &input, &cred("changed-2")).unwrap();
    verify_signature(&spki, &mechanism, SignData::Message(b"m"), &sig).unwrap();
}

#[test]
fn openssl_verifies_soft_token_sm2_and_p256_signatures() {
    let fx = Fixture::new();
    let token = fx.token("openssl");
    let work = tempfile::tempdir().unwrap();
    let message = work.path().join("message.txt");
    std::fs::write(&message, b"signed on the ukey soft token\n").unwrap();
    let cases = [
        (KeyAlgorithm::Sm2, KeyAlgorithm::Sm2.default_mechanism(), "-sm3"),
        (KeyAlgorithm::P256, Mechanism::EcdsaSha256, "-sha256"),
    ];
    for (alg, mechanism, digest_flag) in cases {
        let key = keygen(&token, alg, &alg.name());
        let raw = sign_message(&token, &key, &mechanism, &std::fs::read(&message).unwrap());
        let sig = work.path().join(format!("{alg}.sig"));
        std::fs::write(&sig, raw_to_der(&raw, 32).unwrap()).unwrap();
        let pubkey = work.path().join(format!("{alg}.pub.pem"));
        std::fs::write(&pubkey, ukey_api::crypto::pem::public_key_pem(key.public_key.as_deref().unwrap()).unwrap())
            .unwrap();
        let mut cmd = Command::new("openssl");
        cmd.args(["dgst", digest_flag, "-verify"]).arg(&pubkey).arg("-signature").arg(&sig);
        if alg == KeyAlgorithm::Sm2 {
            cmd.args(["-sigopt", "distid:1234567812345678"]);
        }
        let out = cmd.arg(&message).output().unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}); install it with `apt-get install openssl` (scripts/apt-packages.txt)")
        });
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "openssl refused the {alg} signature: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(token.capabilities().unwrap().sign.iter().any(|(k, _)| *k == MechanismKind::Sm2Sm3));
}
