//! The PIV carrier over a scripted card: each test is an APDU exchange written from SP 800-73-4
//! (commands byte for byte, answers as a conforming card gives them), plus cards that answer
//! garbage. They double as regression tests for the APDU economy: every command sent must be in
//! the script.

use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;
use signature::hazmat::PrehashSigner;
use ukey_api::{CarrierKind, Error, ObjectId, PinRole};

use super::*;
use crate::piv::management::MgmtAlgorithm;
use crate::testing::ScriptedCard;
use crate::tlv::encoded;

const CERT: &[u8] = include_bytes!("../../tests/data/p256-cert.der");
const OTHER_CERT: &[u8] = include_bytes!("../../tests/data/p256-other-cert.der");
const KEY: &[u8] = include_bytes!("../../tests/data/p256-key.pk8");
const GUID: [u8; 16] = [0x5A; 16];

const SELECT: &str = "00A4040009A0000003080000100000";
const GET_CHUID: &str = "00CB3FFF055C035FC10200";
const GET_DISCOVERY: &str = "00CB3FFF035C017E00";
const GET_HISTORY: &str = "00CB3FFF055C035FC10C00";
const GET_9A: &str = "00CB3FFF055C035FC10500";
/// PUT DATA of an empty certificate object for slot 9A.
const DELETE_9A: &str = "00DB3FFF075C035FC1055300";
const GET_9C: &str = "00CB3FFF055C035FC10A00";
const GET_9D: &str = "00CB3FFF055C035FC10B00";
const GET_9E: &str = "00CB3FFF055C035FC10100";
const VERIFY_123456: &str = "0020008008313233343536FFFF";
const LOGOUT: &str = "0020FF80";
const OK: &str = "9000";
const NOT_FOUND: &str = "6A82";

fn hx(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

fn select_answer() -> String {
    let aid = encoded(0x4F, &[0x00, 0x00, 0x10, 0x00, 0x01, 0x00]);
    let label = encoded(0x50, b"Test PIV");
    format!("{}9000", hx(&encoded(0x61, &[aid, label].concat())))
}

fn chuid_answer() -> String {
    let body = [encoded(0x30, &[0xD4; 25]), encoded(0x34, &GUID), encoded(0x35, b"20991231"), encoded(0x3E, &[])];
    format!("{}9000", hx(&encoded(0x53, &body.concat())))
}

fn discovery_answer() -> String {
    let aid = encoded(0x4F, &[0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0]);
    format!("{}9000", hx(&encoded(0x7E, &[aid, encoded(0x5F2F, &[0x40, 0x00])].concat())))
}

/// Answers a GET DATA with a long object the short-APDU way: 256 bytes and `61xx`, then GET
/// RESPONSE rounds.
fn long_answer(card: ScriptedCard, command: &str, object: &[u8]) -> ScriptedCard {
    let chunks: Vec<&[u8]> = object.chunks(256).collect();
    let mut card = card;
    for (i, chunk) in chunks.iter().enumerate() {
        let rest = object.len() - 256 * i - chunk.len();
        let sw = if rest == 0 { "9000".to_string() } else { format!("61{:02X}", rest.min(256) % 256) };
        let cmd = if i == 0 { command.to_string() } else { format!("00C00000{}", &card_le(object.len() - 256 * i)) };
        card = card.expect(&cmd, &format!("{}{sw}", hx(chunk)));
    }
    card
}

fn card_le(remaining: usize) -> String {
    format!("{:02X}", remaining.min(256) % 256)
}

fn cert_object(der: &[u8]) -> Vec<u8> {
    encoded(0x53, &crate::piv::certificate::encode(der))
}

fn opening() -> ScriptedCard {
    ScriptedCard::new()
        .expect(SELECT, &select_answer())
        .expect(GET_CHUID, &chuid_answer())
        .expect(GET_DISCOVERY, &discovery_answer())
}

fn open(card: ScriptedCard) -> PivCarrier {
    PivCarrier::open(
        Box::new(card),
        CarrierKind::Pcsc,
        PivOptions { management_key: Some(ManagementKey::default_key()) },
    )
    .unwrap()
}

fn pin(text: &str) -> Credential {
    Credential::Pin(Pin::new(text).unwrap())
}

fn ec_sign_responder(apdu: &[u8]) -> ukey_api::Result<Vec<u8>> {
    // 00 87 11 9A Lc 7C L 82 00 81 20 <digest>
    let digest = &apdu[11..43];
    let key = SigningKey::from_pkcs8_der(KEY).unwrap();
    let sig: p256::ecdsa::Signature = key.sign_prehash(digest).unwrap();
    let der = sig.to_der();
    Ok([encoded(0x7C, &encoded(0x82, der.as_bytes())), vec![0x90, 0x00]].concat())
}

#[test]
fn open_reads_identity_once() {
    let carrier = open(opening());
    let info = carrier.info();
    assert_eq!(info.serial, hx(&GUID));
    assert_eq!(info.id.as_str(), format!("pcsc:piv:{}", hx(&GUID)));
    assert_eq!(info.model, "Test PIV");
    assert!(info.initialized);
}

#[test]
fn card_without_piv_is_not_supported() {
    let card = ScriptedCard::new().expect(SELECT, NOT_FOUND).expect("00A4040005A00000030800", NOT_FOUND);
    let err = PivCarrier::open(Box::new(card), CarrierKind::Pcsc, PivOptions::default()).err().unwrap();
    assert!(matches!(err, Error::NotSupported(_)), "{err:?}");
}

#[test]
fn lists_certificates_reading_only_what_exists() {
    let card = opening().expect(SELECT, OK).expect(GET_HISTORY, NOT_FOUND);
    let card = long_answer(card, GET_9A, &cert_object(CERT))
        .expect(GET_9C, NOT_FOUND)
        .expect(GET_9D, NOT_FOUND)
        .expect(GET_9E, NOT_FOUND);
    let sent = card.sent();
    let carrier = open(card);
    let list = carrier.objects().unwrap();
    assert_eq!(list.certificates.len(), 1);
    assert_eq!(list.certificates[0].id, ObjectId(vec![0x9A]));
    assert_eq!(list.certificates[0].info.subject, "CN=ukey PIV test P-256");
    assert_eq!(list.keys.len(), 1);
    assert_eq!(list.keys[0].algorithm, KeyAlgorithm::P256);
    assert!(list.problems.is_empty(), "{:?}", list.problems);
    // No retired slot was read: the key history said nothing about them.
    assert!(sent.lock().unwrap().iter().all(|apdu| !hx(apdu).contains("5FC10D")));
}

#[test]
fn retired_slots_are_read_as_far_as_the_key_history_says() {
    let history = encoded(0x53, &[encoded(0xC1, &[1]), encoded(0xC2, &[0])].concat());
    let card = opening()
        .expect(SELECT, OK)
        .expect(GET_HISTORY, &format!("{}9000", hx(&history)))
        .expect(GET_9A, NOT_FOUND)
        .expect(GET_9C, NOT_FOUND)
        .expect(GET_9D, NOT_FOUND)
        .expect(GET_9E, NOT_FOUND)
        .expect("00CB3FFF055C035FC10D00", NOT_FOUND);
    let card = long_answer(card, "00CB3FFF055C035FC10E00", &cert_object(CERT));
    let carrier = open(card);
    let list = carrier.objects().unwrap();
    assert_eq!(list.certificates.len(), 1);
    assert_eq!(list.certificates[0].id, ObjectId(vec![0x83]));
    assert_eq!(list.certificates[0].label, "Retired Key Management 2");
}

#[test]
fn damaged_certificate_is_a_problem_not_a_failure() {
    // A truncated TLV inside the 9A object, and a 9C object that is not a certificate.
    let card = opening()
        .expect(SELECT, OK)
        .expect(GET_HISTORY, NOT_FOUND)
        .expect(GET_9A, "5310701200019000")
        .expect(GET_9C, &format!("{}9000", hx(&encoded(0x53, &encoded(0x70, &[0x30, 0x00])))))
        .expect(GET_9D, "6F00")
        .expect(GET_9E, NOT_FOUND);
    let carrier = open(card);
    let list = carrier.objects().unwrap();
    assert!(list.certificates.is_empty());
    assert_eq!(list.problems.len(), 3, "{:?}", list.problems);
    assert!(list.problems[2].reason.contains("6F00"));
}

#[test]
fn pin_state_spends_no_try() {
    let card = opening().expect(SELECT, OK).expect("00200080", "63C3");
    let carrier = open(card);
    let state = carrier.pin_state().unwrap();
    assert_eq!(state.user.retries_left, Some(3));
    assert!(!state.user.locked);
    let card = opening().expect(SELECT, OK).expect("00200080", "6983");
    assert!(open(card).pin_state().unwrap().user.locked);
}

fn list_9a(card: ScriptedCard) -> ScriptedCard {
    let card = card.expect(SELECT, OK).expect(GET_HISTORY, NOT_FOUND);
    long_answer(card, GET_9A, &cert_object(CERT))
        .expect(GET_9C, NOT_FOUND)
        .expect(GET_9D, NOT_FOUND)
        .expect(GET_9E, NOT_FOUND)
}

#[test]
fn ecdsa_signature_is_raw_and_verifies() {
    let card = list_9a(opening())
        .expect(SELECT, OK)
        .expect(VERIFY_123456, OK)
        .expect_with(&format!("0087119A267C2482008120{}00", "..".repeat(32)), ec_sign_responder)
        .expect(LOGOUT, OK);
    let sent = card.sent();
    let carrier = open(card);
    let list = carrier.objects().unwrap();
    let digest = sha2::Sha256::digest(b"hello PIV").to_vec();
    let sig = carrier
        .sign(
            &ObjectId(vec![0x9A]),
            &Mechanism::EcdsaSha256,
            &SignInput { digest: digest.clone(), message: None },
            &pin("123456"),
        )
        .unwrap();
    assert_eq!(sig.len(), 64);
    assert!(proof::verifies(&list.keys[0].public_key.clone().unwrap(), KeyAlgorithm::P256, &digest, &sig));
    // open 3 + list 7 (with 1 GET RESPONSE) + sign 4.
    assert_eq!(sent.lock().unwrap().len(), 3 + 7 + 4);
}

use sha2::Digest as _;

#[test]
fn wrong_pin_says_tries_left_and_blocked_pin_is_locked() {
    let card = opening().expect(SELECT, OK).expect("0020008008393939393939FFFF", "63C2").expect(LOGOUT, OK);
    let carrier = open(card);
    let err = carrier
        .sign(
            &ObjectId(vec![0x9A]),
            &Mechanism::EcdsaSha256,
            &SignInput { digest: vec![0; 32], message: None },
            &pin("999999"),
        )
        .unwrap_err();
    assert!(matches!(err, Error::WrongPin { role: PinRole::User, retries_left: Some(2), .. }), "{err:?}");

    let card = opening().expect(SELECT, OK).expect(VERIFY_123456, "6983").expect(LOGOUT, OK);
    let err = open(card).verify_pin(PinRole::User, &pin("123456")).unwrap_err();
    assert!(matches!(err, Error::PinLocked { role: PinRole::User }), "{err:?}");
}

#[test]
fn unknown_curve_is_found_by_trying() {
    // No certificate read: the carrier tries P-256, the card says 6A80, then P-384.
    let card = opening()
        .expect(SELECT, OK)
        .expect(VERIFY_123456, OK)
        .expect("0087119A*", "6A80")
        .expect(VERIFY_123456, OK)
        .expect_with("0087149A*", |_| {
            let der = encoded(0x30, &[encoded(0x02, &[1; 48]), encoded(0x02, &[2; 48])].concat());
            Ok([encoded(0x7C, &encoded(0x82, &der)), vec![0x90, 0]].concat())
        })
        .expect(LOGOUT, OK);
    let sig = open(card)
        .sign(
            &ObjectId(vec![0x9A]),
            &Mechanism::EcdsaSha384,
            &SignInput { digest: vec![7; 48], message: None },
            &pin("123456"),
        )
        .unwrap();
    assert_eq!(sig, [vec![1; 48], vec![2; 48]].concat());
}

#[test]
fn card_removed_mid_signature_is_token_removed() {
    let card = opening().expect(SELECT, OK).expect(VERIFY_123456, OK).fail("0087119A*", || Error::TokenRemoved);
    let err = open(card)
        .sign(
            &ObjectId(vec![0x9A]),
            &Mechanism::EcdsaSha256,
            &SignInput { digest: vec![0; 32], message: None },
            &pin("123456"),
        )
        .unwrap_err();
    assert!(matches!(err, Error::TokenRemoved), "{err:?}");
}

#[test]
fn garbage_signature_answer_is_a_clear_error() {
    let card = opening()
        .expect(SELECT, OK)
        .expect(VERIFY_123456, OK)
        .expect("0087119A*", "7C058203300102" /* truncated DER */)
        .expect(LOGOUT, OK);
    let err = open(card)
        .sign(
            &ObjectId(vec![0x9A]),
            &Mechanism::EcdsaSha256,
            &SignInput { digest: vec![0; 32], message: None },
            &pin("123456"),
        )
        .unwrap_err();
    // 7C 05 82 03 30 01 02 + no SW → the last two bytes are read as SW 0102: a device error.
    assert!(matches!(err, Error::Device(_)), "{err:?}");
}

/// The card side of mutual authentication with `key`, for scripts.
fn mutual_auth(card: ScriptedCard, key: ManagementKey, alg: MgmtAlgorithm) -> ScriptedCard {
    let bl = alg.block_len();
    let witness = vec![0x42u8; bl];
    let encrypted_witness = key.encrypt(alg, &witness).unwrap();
    let step1 = format!("0087{:02X}9B047C02800000", alg.id());
    let step1_answer = format!("{}9000", hx(&encoded(0x7C, &encoded(0x80, &encrypted_witness))));
    let inner_len = 2 * (2 + bl);
    let step2 = format!(
        "0087{:02X}9B{:02X}7C{:02X}80{:02X}{}81{:02X}{}00",
        alg.id(),
        inner_len + 2,
        inner_len,
        bl,
        hx(&witness),
        bl,
        "..".repeat(bl)
    );
    card.expect(&step1, &step1_answer).expect_with(&step2, move |apdu| {
        let challenge = &apdu[apdu.len() - 1 - bl..apdu.len() - 1];
        let proof = key.encrypt(alg, challenge).unwrap();
        Ok([encoded(0x7C, &encoded(0x82, &proof)), vec![0x90, 0x00]].concat())
    })
}

fn keygen_script(card: ScriptedCard, key: ManagementKey, alg: MgmtAlgorithm) -> ScriptedCard {
    let sk = SigningKey::from_pkcs8_der(KEY).unwrap();
    let point = sk.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let card = card.expect(SELECT, OK).expect(VERIFY_123456, OK);
    // The slot's certificate is looked at (and, were there one, deleted) before GENERATE, so no
    // interruption can leave it beside the new key.
    mutual_auth(card, key, alg)
        .expect(GET_9A, NOT_FOUND)
        .expect("0047009A05AC0380011100", &format!("{}9000", hx(&encoded(0x7F49, &encoded(0x86, &point)))))
        .expect(LOGOUT, OK)
}

#[test]
fn keygen_with_default_3des_management_key() {
    let card = keygen_script(opening(), ManagementKey::default_key(), MgmtAlgorithm::Tdes);
    let carrier = open(card);
    let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "k".into(), id: Some(ObjectId(vec![0x9A])) };
    let key = carrier.generate_key(&request, &pin("123456")).unwrap();
    assert_eq!(key.algorithm, KeyAlgorithm::P256);
    assert_eq!(
        ukey_api::crypto::keyinfo::spki_algorithm(key.public_key.as_ref().unwrap()).unwrap(),
        KeyAlgorithm::P256
    );
}

#[test]
fn keygen_with_aes_management_keys() {
    for (text, alg) in [
        ("aes128:000102030405060708090A0B0C0D0E0F", MgmtAlgorithm::Aes128),
        ("aes192:000102030405060708090A0B0C0D0E0F1011121314151617", MgmtAlgorithm::Aes192),
        ("aes256:000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", MgmtAlgorithm::Aes256),
    ] {
        let key = ManagementKey::parse(text).unwrap();
        let card = keygen_script(opening(), key.clone(), alg);
        let carrier =
            PivCarrier::open(Box::new(card), CarrierKind::Pcsc, PivOptions { management_key: Some(key) }).unwrap();
        let request =
            KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "k".into(), id: Some(ObjectId(vec![0x9A])) };
        carrier.generate_key(&request, &pin("123456")).unwrap();
    }
}

#[test]
fn default_key_falls_back_to_aes192_when_card_refuses_3des() {
    let key = ManagementKey::default_key();
    let card = opening().expect(SELECT, OK).expect(VERIFY_123456, OK).expect("0087039B047C02800000", "6A80");
    let card = mutual_auth(card, key.clone(), MgmtAlgorithm::Aes192)
        .expect(GET_9A, NOT_FOUND)
        .expect("0047009A05AC0380011100", "6982")
        .expect(LOGOUT, OK);
    let carrier = open(card);
    let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "k".into(), id: Some(ObjectId(vec![0x9A])) };
    let err = carrier.generate_key(&request, &pin("123456")).unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
}

#[test]
fn keygen_deletes_the_old_certificate_first_and_restores_it_when_refused() {
    let object = cert_object(CERT);
    let put_back = [encoded(0x5C, &[0x5F, 0xC1, 0x05]), object.clone()].concat();
    let card = opening().expect(SELECT, OK).expect(VERIFY_123456, OK);
    let card = mutual_auth(card, ManagementKey::default_key(), MgmtAlgorithm::Tdes);
    let card = long_answer(card, GET_9A, &object)
        .expect(DELETE_9A, OK)
        .expect("0047009A05AC0380011100", "6A80")
        .expect(&format!("10DB3FFFFF{}", hx(&put_back[..255])), OK)
        .expect(&format!("00DB3FFF{:02X}{}", put_back.len() - 255, hx(&put_back[255..])), OK)
        .expect(LOGOUT, OK);
    let carrier = open(card);
    let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "k".into(), id: Some(ObjectId(vec![0x9A])) };
    let err = carrier.generate_key(&request, &pin("123456")).unwrap_err();
    assert!(!matches!(err, Error::TokenRemoved), "{err:?}");
}

#[test]
fn wrong_management_key_is_refused_clearly() {
    let card = opening()
        .expect(SELECT, OK)
        .expect(VERIFY_123456, OK)
        .expect("0087039B047C02800000", "7C0A80081122334455667788" /* missing SW */)
        .expect(LOGOUT, OK);
    let carrier = open(card);
    let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "k".into(), id: Some(ObjectId(vec![0x9A])) };
    assert!(carrier.generate_key(&request, &pin("123456")).is_err());

    let card = opening()
        .expect(SELECT, OK)
        .expect(VERIFY_123456, OK)
        .expect("0087039B047C02800000", "7C0A800811223344556677889000");
    let card = card.expect("0087039B167C148008*", "6982").expect(LOGOUT, OK);
    let err = open(card).generate_key(&request, &pin("123456")).unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    assert!(err.to_string().contains("UKEY_PIV_MGMT_KEY"));
}

#[test]
fn certificate_import_checks_the_key_and_chains_the_write() {
    // After keygen the key is known; importing a certificate of another key is refused before any
    // PIN or write, the matching one is written with command chaining.
    let card = keygen_script(opening(), ManagementKey::default_key(), MgmtAlgorithm::Tdes);
    let object = [encoded(0x5C, &[0x5F, 0xC1, 0x05]), encoded(0x53, &crate::piv::certificate::encode(CERT))].concat();
    let first = format!("10DB3FFFFF{}", hx(&object[..255]));
    let second = format!("00DB3FFF{:02X}{}", object.len() - 255, hx(&object[255..]));
    // The refused import selects and stops; the right one goes on.
    let card = card.expect(SELECT, OK).expect(SELECT, OK).expect(VERIFY_123456, OK);
    let card = mutual_auth(card, ManagementKey::default_key(), MgmtAlgorithm::Tdes)
        .expect(&first, OK)
        .expect(&second, OK)
        .expect(LOGOUT, OK);
    let carrier = open(card);
    let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "k".into(), id: Some(ObjectId(vec![0x9A])) };
    carrier.generate_key(&request, &pin("123456")).unwrap();
    let wrong = CertificateImport { der: OTHER_CERT.to_vec(), label: None, id: Some(ObjectId(vec![0x9A])) };
    let err = carrier.import_certificate(&wrong, &pin("123456")).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    let right = CertificateImport { der: CERT.to_vec(), label: None, id: None };
    let stored = carrier.import_certificate(&right, &pin("123456")).unwrap();
    assert_eq!(stored.id, ObjectId(vec![0x9A]));
}

#[test]
fn certificate_import_proves_key_possession_when_key_unknown() {
    let object = [encoded(0x5C, &[0x5F, 0xC1, 0x05]), encoded(0x53, &crate::piv::certificate::encode(CERT))].concat();
    let card = opening()
        .expect(SELECT, OK)
        .expect(VERIFY_123456, OK)
        .expect_with("0087119A*", ec_sign_responder)
        .expect(LOGOUT, OK)
        .expect(VERIFY_123456, OK);
    let card = mutual_auth(card, ManagementKey::default_key(), MgmtAlgorithm::Tdes)
        .expect(&format!("10DB3FFFFF{}", hx(&object[..255])), OK)
        .expect("00DB3FFF*", OK)
        .expect(LOGOUT, OK);
    let carrier = open(card);
    let request = CertificateImport { der: CERT.to_vec(), label: None, id: Some(ObjectId(vec![0x9A])) };
    carrier.import_certificate(&request, &pin("123456")).unwrap();

    // The same proof fails for a certificate of another key.
    let card = opening()
        .expect(SELECT, OK)
        .expect(VERIFY_123456, OK)
        .expect_with("0087119A*", ec_sign_responder)
        .expect(LOGOUT, OK);
    let request = CertificateImport { der: OTHER_CERT.to_vec(), label: None, id: Some(ObjectId(vec![0x9A])) };
    let err = open(card).import_certificate(&request, &pin("123456")).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
}

#[test]
fn pin_change_unblock_and_puk_check() {
    let card = opening()
        .expect(SELECT, OK)
        .expect("0024008010313233343536FFFF363534333231FFFF", OK)
        .expect(SELECT, OK)
        .expect("002400811031323334353637383837363534333231", "63C1")
        .expect(SELECT, OK)
        .expect("002C0080103132333435363738393939393939FFFF", OK);
    let carrier = open(card);
    carrier.change_pin(PinRole::User, &pin("123456"), &Pin::new("654321").unwrap()).unwrap();
    let err = carrier.change_pin(PinRole::So, &pin("12345678"), &Pin::new("87654321").unwrap()).unwrap_err();
    assert!(matches!(err, Error::WrongPin { role: PinRole::So, retries_left: Some(1), .. }), "{err:?}");
    carrier.unblock_pin(&pin("12345678"), &Pin::new("999999").unwrap()).unwrap();
}

#[test]
fn pins_of_the_wrong_length_never_reach_the_card() {
    let carrier = open(opening().expect(SELECT, OK));
    let err = carrier.verify_pin(PinRole::User, &pin("12345")).unwrap_err();
    assert!(matches!(err, Error::PinRejected(_)), "{err:?}");
}

#[test]
fn initialize_blocks_resets_and_restores_identity() {
    let card = opening()
        .expect(SELECT, OK)
        // The PUK is checked by changing it to itself.
        .expect("002400811031323334353637383132333435363738", OK)
        .expect(GET_CHUID, &chuid_answer())
        // The PIN is blocked with wrong values until the card says so.
        .expect("00200080", "63C2")
        .expect(&format!("0020008008{}", "..".repeat(8)), "63C1")
        .expect("00200080", "63C1")
        .expect(&format!("0020008008{}", "..".repeat(8)), "63C0")
        .expect("00200080", "6983")
        // The PUK is blocked with a wrong PUK.
        .expect(&format!("002C008010{}", "30".repeat(16)), "63C0")
        .expect("00FB0000", OK)
        .expect(SELECT, OK)
        .expect("0024008010313233343536FFFF313131313131FFFF", OK);
    let card = mutual_auth(card, ManagementKey::default_key(), MgmtAlgorithm::Tdes);
    // The CHUID goes back unchanged, so the card keeps its identity.
    let chuid_content =
        [encoded(0x30, &[0xD4; 25]), encoded(0x34, &GUID), encoded(0x35, b"20991231"), encoded(0x3E, &[])].concat();
    let put = [encoded(0x5C, &[0x5F, 0xC1, 0x02]), encoded(0x53, &chuid_content)].concat();
    let card = card.expect(&format!("00DB3FFF{:02X}{}", put.len(), hx(&put)), OK);
    let carrier = open(card);
    let request = InitRequest {
        so_pin: Pin::new("12345678").unwrap(),
        label: String::new(),
        user_pin: Some(Pin::new("111111").unwrap()),
    };
    carrier.initialize(&request).unwrap();
}

#[test]
fn initialize_with_a_wrong_puk_touches_nothing() {
    let card = opening().expect(SELECT, OK).expect("002400811031323334353637383132333435363738", "63C2");
    let carrier = open(card);
    let request = InitRequest { so_pin: Pin::new("12345678").unwrap(), label: String::new(), user_pin: None };
    let err = carrier.initialize(&request).unwrap_err();
    assert!(matches!(err, Error::WrongPin { role: PinRole::So, retries_left: Some(2), .. }), "{err:?}");
}
