//! Damaged token files: every operation refuses them with `Error::Corrupt` naming the file, and
//! the file's bytes are exactly as they were afterwards.

mod common;

use std::path::Path;

use common::*;
use ukey_api::{
    Carrier, CertificateImport, Driver, Error, InitRequest, KeyAlgorithm, KeyGenRequest, ObjectId, PinRole,
};

/// Runs every operation of the carrier against the (damaged) token and checks each is refused
/// naming the file, and that the file was not touched.
fn assert_refused_untouched(token: &dyn Carrier, path: &Path, expect_corrupt: bool) {
    let before = std::fs::read(path).unwrap();
    let id = ObjectId(vec![1]);
    let digest = ukey_api::SignInput { digest: vec![0; 32], message: None };
    let results: Vec<(&str, Result<(), Error>)> = vec![
        ("pin_state", token.pin_state().map(|_| ())),
        ("objects", token.objects().map(|_| ())),
        ("verify_pin", token.verify_pin(PinRole::User, &user())),
        ("verify_so_pin", token.verify_pin(PinRole::So, &so())),
        ("change_pin", token.change_pin(PinRole::User, &user(), &pin("7777"))),
        ("unblock_pin", token.unblock_pin(&so(), &pin("7777"))),
        (
            "initialize",
            token.initialize(&InitRequest { so_pin: pin(SO_PIN), label: "again".into(), user_pin: Some(pin("7777")) }),
        ),
        (
            "generate_key",
            token
                .generate_key(&KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "k".into(), id: None }, &user())
                .map(|_| ()),
        ),
        ("sign", token.sign(&id, &ukey_api::Mechanism::EcdsaSha256, &digest, &user()).map(|_| ())),
        ("read_data", token.read_data("x", Some(&user())).map(|_| ())),
        ("delete_object", token.delete_object(&id, None, &user())),
        (
            "import_certificate",
            token
                .import_certificate(&CertificateImport { der: vec![0x30, 0], label: None, id: None }, &user())
                .map(|_| ()),
        ),
    ];
    for (op, result) in results {
        match result {
            Err(Error::Corrupt { path: p, reason }) if expect_corrupt => {
                assert_eq!(p, path, "{op}: the error names the damaged file");
                assert!(!reason.is_empty());
                let message = Error::Corrupt { path: p, reason }.to_string();
                assert!(message.contains(&path.display().to_string()) && message.contains("untouched"), "{message}");
            }
            // The certificate is refused before the file is read.
            Err(Error::InvalidInput(_)) if op == "import_certificate" => {}
            Err(Error::NotSupported(msg)) if !expect_corrupt => {
                assert!(msg.contains(&path.display().to_string()) && msg.contains("version"), "{op}: {msg}");
            }
            other => panic!("{op}: expected a refusal naming {}, got {other:?}", path.display()),
        }
        assert_eq!(std::fs::read(path).unwrap(), before, "{op} changed the damaged file");
    }
}

fn damaged_token(damage: impl FnOnce(&mut Vec<u8>)) -> (Fixture, ukey_soft::SoftToken) {
    let fx = Fixture::new();
    let token = fx.token("damaged");
    token.write_data(&common_data(), &user()).unwrap();
    let mut bytes = std::fs::read(token.path()).unwrap();
    damage(&mut bytes);
    std::fs::write(token.path(), &bytes).unwrap();
    (fx, token)
}

fn common_data() -> ukey_api::DataObjectWrite {
    ukey_api::DataObjectWrite {
        label: "note".into(),
        application: "tests".into(),
        id: None,
        value: ukey_api::SecretBytes::new(b"hello".to_vec()),
        private: true,
    }
}

#[test]
fn truncated_file_is_refused_and_left_alone() {
    for keep in [0usize, 10, 40, 200] {
        let (_fx, token) = damaged_token(|b| b.truncate(keep.min(b.len() - 1)));
        assert_refused_untouched(&token, token.path(), true);
    }
    let (_fx, token) = damaged_token(|b| {
        let half = b.len() / 2;
        b.truncate(half)
    });
    assert_refused_untouched(&token, token.path(), true);
}

#[test]
fn flipped_bits_anywhere_are_detected() {
    for position in [3usize, 30, 120, 400, 700] {
        let (_fx, token) = damaged_token(|b| {
            let at = position.min(b.len() - 2);
            b[at] ^= 0x04;
        });
        assert_refused_untouched(&token, token.path(), true);
    }
}

#[test]
fn garbage_and_foreign_files_are_refused() {
    let (_fx, token) = damaged_token(|b| *b = b"\x00\xff not a token at all".to_vec());
    assert_refused_untouched(&token, token.path(), true);
    let (_fx, token) = damaged_token(|b| *b = br#"{"label":"x"}"#.to_vec());
    assert_refused_untouched(&token, token.path(), true);
}

#[test]
fn a_consistent_file_with_bad_content_is_refused() {
    // Checksum matches, content is wrong: tries_left above max_tries.
    let (_fx, token) = damaged_token(|b| {
        let text = String::from_utf8(b.clone()).unwrap();
        let body_start = text.find('\n').unwrap() + 1;
        let body = text[body_start..].trim_end().replace("\"tries_left\": 6", "\"tries_left\": 60");
        *b = reencode(&body);
    });
    assert_refused_untouched(&token, token.path(), true);
}

#[test]
fn a_newer_format_version_is_refused_with_its_own_message() {
    let (_fx, token) = damaged_token(|b| {
        let text = String::from_utf8(b.clone()).unwrap();
        *b = text.replacen("UKEY-SOFT-TOKEN 1 ", "UKEY-SOFT-TOKEN 2 ", 1).into_bytes();
    });
    assert_refused_untouched(&token, token.path(), false);
}

#[test]
fn a_renamed_token_file_is_refused() {
    let fx = Fixture::new();
    let token = fx.token("renamed");
    let copy = fx.store_dir().join("ABCDEF0123456789.token");
    std::fs::copy(token.path(), &copy).unwrap();
    let err = fx.driver.token("ABCDEF0123456789").err().expect("a copied file must not open under another name");
    assert!(matches!(&err, Error::Corrupt { path, .. } if path == &copy), "{err:?}");
}

#[test]
fn the_driver_lists_the_good_tokens_and_names_the_damaged_one() {
    let fx = Fixture::new();
    let good = fx.token("good");
    let bad = fx.token("bad");
    std::fs::write(bad.path(), b"UKEY-SOFT-TOKEN 1 sha256:00\n{").unwrap();
    let carriers = fx.driver.carriers().unwrap();
    assert_eq!(carriers.len(), 1);
    assert_eq!(carriers[0].info().serial, good.info().serial);
    let status = fx.driver.status();
    let bad_status = status.iter().find(|s| !s.ok).expect("the damaged token is reported");
    assert_eq!(bad_status.subject, bad.path().display().to_string());
    assert!(bad_status.message.contains("checksum"), "{}", bad_status.message);
    // Creating another token still works; the damaged file stays as it was.
    fx.token("third");
    assert_eq!(std::fs::read(bad.path()).unwrap(), b"UKEY-SOFT-TOKEN 1 sha256:00\n{");
}

fn reencode(body: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = format!("UKEY-SOFT-TOKEN 1 sha256:{}\n", hex::encode(Sha256::digest(body.as_bytes()))).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
    out
}
