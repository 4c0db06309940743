//! The card's security commands driven directly with APDUs (no PC/SC): PIN and PUK with their
//! retry counters, management-key authentication, key generation and the private-key operations.

mod support;

use ecdsa::signature::hazmat::PrehashVerifier;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256, Sha384};
use support::*;
use ukey_vpiv::mgmt::MgmtAlgorithm;
use ukey_vpiv::{CardConfig, VirtualPiv, tlv};
use zeroize::Zeroizing;

fn public_point(template: &[u8]) -> Vec<u8> {
    let inner = tlv::find(template, 0x7F49).unwrap().expect("7F49");
    tlv::find(inner, 0x86).unwrap().expect("86 point").to_vec()
}

fn admin_card() -> VirtualPiv {
    let mut card = selected_card();
    assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Tdes, &DEFAULT_MGMT), 0x9000);
    card
}

// ---- PIN and PUK

#[test]
fn verify_counts_down_and_blocks() {
    let mut card = selected_card();
    assert_eq!(send(&mut card, 0, 0x20, 0x00, 0x80, &[], None).1, 0x63C3, "status without spending a try");
    assert_eq!(verify(&mut card, b"000000"), 0x63C2);
    assert_eq!(verify(&mut card, b"000000"), 0x63C1);
    assert_eq!(send(&mut card, 0, 0x20, 0x00, 0x80, &[], None).1, 0x63C1);
    assert_eq!(verify(&mut card, b"000000"), 0x63C0);
    assert_eq!(verify(&mut card, b"123456"), 0x6983, "blocked even with the right PIN");
    assert_eq!(send(&mut card, 0, 0x20, 0x00, 0x80, &[], None).1, 0x6983);
    assert_eq!(card.pin_tries_left(), 0);
}

#[test]
fn a_right_pin_resets_the_counter_and_is_remembered_until_select() {
    let mut card = selected_card();
    assert_eq!(verify(&mut card, b"000000"), 0x63C2);
    assert_eq!(verify(&mut card, b"123456"), 0x9000);
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(send(&mut card, 0, 0x20, 0x00, 0x80, &[], None).1, 0x9000, "verified");
    select(&mut card);
    assert_eq!(send(&mut card, 0, 0x20, 0x00, 0x80, &[], None).1, 0x63C3, "SELECT clears it");
    assert_eq!(verify(&mut card, b"123456"), 0x9000);
    assert_eq!(send(&mut card, 0, 0x20, 0xFF, 0x80, &[], None).1, 0x9000, "P1=FF resets it");
    assert!(!card.pin_verified());
}

#[test]
fn verify_errors() {
    let mut card = selected_card();
    assert_eq!(send(&mut card, 0, 0x20, 0x00, 0x80, b"123456", None).1, 0x6A80, "not padded to 8");
    assert_eq!(send(&mut card, 0, 0x20, 0x00, 0x00, &pin_block(b"123456"), None).1, 0x6A88, "no global PIN");
    assert_eq!(send(&mut card, 0, 0x20, 0x00, 0x9B, &pin_block(b"123456"), None).1, 0x6A86);
    assert_eq!(send(&mut card, 0, 0x20, 0x01, 0x80, &pin_block(b"123456"), None).1, 0x6A86);
    assert_eq!(card.pin_tries_left(), 3, "malformed VERIFYs spend no try");
}

#[test]
fn change_pin_and_puk() {
    let mut card = selected_card();
    let mut data = pin_block(b"123456");
    data.extend(pin_block(b"87654321"));
    assert_eq!(send(&mut card, 0, 0x24, 0x00, 0x80, &data, None).1, 0x9000);
    assert!(card.pin_verified(), "a changed PIN counts as verified");
    select(&mut card);
    assert_eq!(verify(&mut card, b"123456"), 0x63C2);
    assert_eq!(verify(&mut card, b"87654321"), 0x9000);

    let mut data = pin_block(b"12345678");
    data.extend(pin_block(b"abcdefgh"));
    assert_eq!(send(&mut card, 0, 0x24, 0x00, 0x81, &data, None).1, 0x9000, "PUK bytes may be anything");
    let mut wrong = pin_block(b"12345678");
    wrong.extend(pin_block(b"11111111"));
    assert_eq!(send(&mut card, 0, 0x24, 0x00, 0x81, &wrong, None).1, 0x63C2);
    assert_eq!(card.puk_tries_left(), 2);
}

#[test]
fn change_reference_data_errors() {
    let mut card = selected_card();
    let mut bad_new = pin_block(b"123456");
    bad_new.extend(pin_block(b"12345"));
    assert_eq!(send(&mut card, 0, 0x24, 0x00, 0x80, &bad_new, None).1, 0x6A80, "5 digits");
    let mut letters = pin_block(b"123456");
    letters.extend(pin_block(b"12345a"));
    assert_eq!(send(&mut card, 0, 0x24, 0x00, 0x80, &letters, None).1, 0x6A80, "not digits");
    assert_eq!(card.pin_tries_left(), 3, "a malformed new PIN spends no try");
    let mut wrong_old = pin_block(b"000000");
    wrong_old.extend(pin_block(b"654321"));
    assert_eq!(send(&mut card, 0, 0x24, 0x00, 0x80, &wrong_old, None).1, 0x63C2);
    assert_eq!(send(&mut card, 0, 0x24, 0x00, 0x80, &pin_block(b"123456"), None).1, 0x6A80, "8 bytes only");
    assert_eq!(send(&mut card, 0, 0x24, 0x01, 0x80, &wrong_old, None).1, 0x6A86);
    assert_eq!(send(&mut card, 0, 0x24, 0x00, 0x00, &wrong_old, None).1, 0x6A88);
    assert_eq!(verify(&mut card, b"000000"), 0x63C1);
    assert_eq!(verify(&mut card, b"000000"), 0x63C0);
    let mut right = pin_block(b"123456");
    right.extend(pin_block(b"654321"));
    assert_eq!(send(&mut card, 0, 0x24, 0x00, 0x80, &right, None).1, 0x6983, "blocked");
}

#[test]
fn the_puk_unblocks_the_pin() {
    let mut card = selected_card();
    for _ in 0..3 {
        verify(&mut card, b"000000");
    }
    assert_eq!(verify(&mut card, b"123456"), 0x6983);
    let mut wrong = pin_block(b"00000000");
    wrong.extend(pin_block(b"222222"));
    assert_eq!(send(&mut card, 0, 0x2C, 0x00, 0x80, &wrong, None).1, 0x63C2);
    let mut bad_pin = pin_block(b"12345678");
    bad_pin.extend(pin_block(b"22"));
    assert_eq!(send(&mut card, 0, 0x2C, 0x00, 0x80, &bad_pin, None).1, 0x6A80);
    let mut data = pin_block(b"12345678");
    data.extend(pin_block(b"222222"));
    assert_eq!(send(&mut card, 0, 0x2C, 0x00, 0x80, &data, None).1, 0x9000);
    assert_eq!(card.puk_tries_left(), 3, "a right PUK resets its counter");
    assert_eq!(card.pin_tries_left(), 3);
    assert!(!card.pin_verified());
    assert_eq!(verify(&mut card, b"222222"), 0x9000);
    assert_eq!(send(&mut card, 0, 0x2C, 0x00, 0x81, &data, None).1, 0x6A88);
    assert_eq!(send(&mut card, 0, 0x2C, 0x00, 0x80, &data[..8], None).1, 0x6A80);
}

#[test]
fn a_blocked_puk_cannot_unblock() {
    let mut card = selected_card();
    let mut wrong = pin_block(b"00000000");
    wrong.extend(pin_block(b"222222"));
    for expected in [0x63C2, 0x63C1, 0x63C0, 0x6983] {
        assert_eq!(send(&mut card, 0, 0x2C, 0x00, 0x80, &wrong, None).1, expected);
    }
    let mut right = pin_block(b"12345678");
    right.extend(pin_block(b"222222"));
    assert_eq!(send(&mut card, 0, 0x2C, 0x00, 0x80, &right, None).1, 0x6983);
}

#[test]
fn reset_needs_both_pin_and_puk_blocked_then_restores_the_factory_card() {
    let mut card = admin_card();
    assert_eq!(generate(&mut card, 0x9A, 0x11).1, 0x9000);
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x05], &tlv::encode(0x70, &[0x30, 0x00])), 0x9000);
    assert_eq!(send(&mut card, 0, 0xFB, 0, 0, &[], None).1, 0x6985, "nothing blocked");
    for _ in 0..3 {
        verify(&mut card, b"000000");
    }
    assert_eq!(send(&mut card, 0, 0xFB, 0, 0, &[], None).1, 0x6985, "PUK not blocked");
    let mut wrong = pin_block(b"00000000");
    wrong.extend(pin_block(b"222222"));
    for _ in 0..3 {
        send(&mut card, 0, 0x2C, 0x00, 0x80, &wrong, None);
    }
    assert_eq!(send(&mut card, 0, 0xFB, 1, 0, &[], None).1, 0x6A86);
    assert_eq!(send(&mut card, 0, 0xFB, 0, 0, &[], None).1, 0x9000);
    assert_eq!(card.pin_tries_left(), 3);
    assert_eq!(card.puk_tries_left(), 3);
    assert_eq!(card.key_algorithm(0x9A), None, "keys are wiped");
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x05]).1, 0x6A82, "certificates are wiped");
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x02]).1, 0x9000, "CHUID is back");
    assert_eq!(verify(&mut card, b"123456"), 0x9000, "factory PIN");
}

// ---- management key

#[test]
fn mutual_authentication_with_every_management_key_algorithm() {
    let cases: [(MgmtAlgorithm, Vec<u8>); 4] = [
        (MgmtAlgorithm::Tdes, DEFAULT_MGMT.to_vec()),
        (MgmtAlgorithm::Aes128, vec![0x11; 16]),
        (MgmtAlgorithm::Aes192, vec![0x22; 24]),
        (MgmtAlgorithm::Aes256, vec![0x33; 32]),
    ];
    for (alg, key) in cases {
        let config = CardConfig { mgmt_algorithm: alg, mgmt_key: Zeroizing::new(key.clone()), ..CardConfig::default() };
        let mut card = VirtualPiv::new(config).unwrap();
        select(&mut card);
        let mut wrong_key = key.clone();
        wrong_key[0] ^= 0x02; // not the DES parity bit
        assert_eq!(mgmt_auth(&mut card, alg, &wrong_key), 0x6982, "{alg:?} wrong key");
        assert!(!card.mgmt_authenticated());
        assert_eq!(mgmt_auth(&mut card, alg, &key), 0x9000, "{alg:?}");
        assert!(card.mgmt_authenticated());
        let other = if alg == MgmtAlgorithm::Tdes { MgmtAlgorithm::Aes128 } else { MgmtAlgorithm::Tdes };
        let (_, sw) = send(&mut card, 0, 0x87, other.id(), 0x9B, &tlv::encode(0x7C, &[0x80, 0x00]), Some(256));
        assert_eq!(sw, 0x6A86, "{alg:?} card asked with {other:?}");
    }
}

#[test]
fn external_authentication_with_the_management_key() {
    let mut card = selected_card();
    let alg = MgmtAlgorithm::Tdes;
    let (resp, sw) = send(&mut card, 0, 0x87, 0x03, 0x9B, &tlv::encode(0x7C, &[0x81, 0x00]), Some(256));
    assert_eq!(sw, 0x9000);
    let challenge = tlv::find(tlv::find(&resp, 0x7C).unwrap().unwrap(), 0x81).unwrap().unwrap().to_vec();
    assert_eq!(challenge.len(), 8);
    let response = alg.encrypt_block(&DEFAULT_MGMT, &challenge).unwrap();
    let (_, sw) = send(&mut card, 0, 0x87, 0x03, 0x9B, &tlv::encode(0x7C, &tlv::encode(0x82, &response)), None);
    assert_eq!(sw, 0x9000);
    assert!(card.mgmt_authenticated());
    // A second answer to the same challenge is refused: the challenge is single use.
    let (_, sw) = send(&mut card, 0, 0x87, 0x03, 0x9B, &tlv::encode(0x7C, &tlv::encode(0x82, &response)), None);
    assert_eq!(sw, 0x6985);
}

#[test]
fn a_second_step_without_a_first_or_after_another_command_is_refused() {
    let mut card = selected_card();
    let mut body = tlv::encode(0x80, &[0; 8]);
    body.extend(tlv::encode(0x81, &[0; 8]));
    assert_eq!(send(&mut card, 0, 0x87, 0x03, 0x9B, &tlv::encode(0x7C, &body), Some(256)).1, 0x6985);
    let (_, sw) = send(&mut card, 0, 0x87, 0x03, 0x9B, &tlv::encode(0x7C, &[0x80, 0x00]), Some(256));
    assert_eq!(sw, 0x9000);
    get_data(&mut card, &[0x7E]);
    assert_eq!(send(&mut card, 0, 0x87, 0x03, 0x9B, &tlv::encode(0x7C, &body), Some(256)).1, 0x6985);
    assert_eq!(send(&mut card, 0, 0x87, 0x03, 0x9B, &[0x7D, 0x00], Some(256)).1, 0x6A80, "not a 7C template");
}

#[test]
fn set_management_key_switches_algorithm() {
    let mut card = admin_card();
    let mut data = vec![0x0C, 0x9B, 32];
    data.extend([0x44; 32]);
    assert_eq!(send(&mut card, 0, 0xFF, 0xFF, 0xFF, &data, None).1, 0x9000);
    select(&mut card);
    assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Tdes, &DEFAULT_MGMT), 0x6A86);
    assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Aes256, &[0x44; 32]), 0x9000);
    assert_eq!(send(&mut card, 0, 0xFF, 0xFF, 0xFF, &[0x0C, 0x9B, 16, 0], None).1, 0x6A80);
    select(&mut card);
    assert_eq!(send(&mut card, 0, 0xFF, 0xFF, 0xFF, &data, None).1, 0x6982);
}

// ---- keys

#[test]
fn generate_needs_the_management_key_and_checks_its_parameters() {
    let mut card = selected_card();
    assert_eq!(generate(&mut card, 0x9A, 0x11).1, 0x6982);
    assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Tdes, &DEFAULT_MGMT), 0x9000);
    assert_eq!(generate(&mut card, 0x9B, 0x11).1, 0x6A86, "9B is no asymmetric slot");
    assert_eq!(generate(&mut card, 0x9A, 0x99).1, 0x6A80, "unknown algorithm");
    assert_eq!(send(&mut card, 0, 0x47, 0x00, 0x9A, &[0xAC, 0x00], Some(256)).1, 0x6A80, "no algorithm");
    assert_eq!(send(&mut card, 0, 0x47, 0x01, 0x9A, &[0xAC, 0x03, 0x80, 0x01, 0x11], Some(256)).1, 0x6A86);
}

#[test]
fn p256_signature_in_9a_needs_the_pin_once() {
    let mut card = admin_card();
    let (template, sw) = generate(&mut card, 0x9A, 0x11);
    assert_eq!(sw, 0x9000);
    let point = public_point(&template);
    assert_eq!(point.len(), 65);
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    let digest = Sha256::digest(b"message");
    assert_eq!(sign(&mut card, 0x11, 0x9A, &digest).1, 0x6982, "PIN first");
    assert_eq!(verify(&mut card, b"123456"), 0x9000);
    for _ in 0..2 {
        let (der, sw) = sign(&mut card, 0x11, 0x9A, &digest);
        assert_eq!(sw, 0x9000);
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        key.verify_prehash(&digest, &sig).expect("signature verifies");
    }
    assert_eq!(sign(&mut card, 0x14, 0x9A, &digest).1, 0x6A86, "wrong algorithm for the key");
    assert_eq!(sign(&mut card, 0x11, 0x9D, &digest).1, 0x6A88, "no key in 9D");
    assert_eq!(sign(&mut card, 0x11, 0x9B, &digest).1, 0x6A86, "9B is the management key");
    assert_eq!(sign(&mut card, 0x11, 0x80, &digest).1, 0x6A86, "not a key slot");
    let (_, sw) = send(&mut card, 0, 0x87, 0x11, 0x9A, &tlv::encode(0x7C, &tlv::encode(0x81, &digest)), Some(256));
    assert_eq!(sw, 0x6A80, "no 82 asked for");
}

#[test]
fn the_signature_key_9c_needs_a_verify_before_each_use() {
    let mut card = admin_card();
    let (template, _) = generate(&mut card, 0x9C, 0x14);
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&public_point(&template)).unwrap();
    let digest = Sha384::digest(b"contract");
    assert_eq!(verify(&mut card, b"123456"), 0x9000);
    let (der, sw) = sign(&mut card, 0x14, 0x9C, &digest);
    assert_eq!(sw, 0x9000);
    key.verify_prehash(&digest, &p384::ecdsa::Signature::from_der(&der).unwrap()).unwrap();
    assert_eq!(sign(&mut card, 0x14, 0x9C, &digest).1, 0x6982, "a second signature needs a new VERIFY");
    assert_eq!(verify(&mut card, b"123456"), 0x9000);
    assert_eq!(sign(&mut card, 0x14, 0x9C, &digest).1, 0x9000);
}

#[test]
fn the_card_authentication_key_9e_needs_no_pin() {
    let mut card = admin_card();
    generate(&mut card, 0x9E, 0x11);
    select(&mut card);
    assert_eq!(sign(&mut card, 0x11, 0x9E, &[0x42; 32]).1, 0x9000);
}

#[test]
fn a_pin_policy_given_at_generation_wins() {
    let mut card = admin_card();
    let control = tlv::encode(0xAC, &[0x80, 0x01, 0x11, 0xAA, 0x01, 0x01]);
    assert_eq!(transmit(&mut card, 0x47, 0x00, 0x9D, &control).1, 0x9000);
    assert_eq!(sign(&mut card, 0x11, 0x9D, &[1; 32]).1, 0x9000, "PIN policy never");
}

#[test]
fn rsa_2048_raw_operation_over_a_padded_block() {
    let mut card = admin_card();
    let (template, sw) = generate(&mut card, 0x9A, 0x07);
    assert_eq!(sw, 0x9000);
    assert!(template.len() > 256, "the answer came through GET RESPONSE");
    let inner = tlv::find(&template, 0x7F49).unwrap().unwrap();
    let n = tlv::find(inner, 0x81).unwrap().unwrap();
    let e = tlv::find(inner, 0x82).unwrap().unwrap();
    assert_eq!(n.len(), 256);
    let public =
        rsa::PublicKey::new(rsa::BoxedUint::from_be_slice_vartime(n), rsa::BoxedUint::from_be_slice_vartime(e))
            .unwrap();
    assert_eq!(public.size(), 256);
    // EMSA-PKCS1-v1_5 block for SHA-256 built by hand, as a host would.
    let digest = Sha256::digest(b"rsa message");
    let prefix = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
        0x20,
    ];
    let mut block = vec![0x00, 0x01];
    block.resize(256 - prefix.len() - digest.len() - 1, 0xFF);
    block.push(0x00);
    block.extend(prefix);
    block.extend(digest);
    assert_eq!(block.len(), 256);
    assert_eq!(verify(&mut card, b"123456"), 0x9000);
    let (sig, sw) = sign(&mut card, 0x07, 0x9A, &block);
    assert_eq!(sw, 0x9000);
    assert_eq!(sig.len(), 256);
    let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public);
    let signature = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap();
    use rsa::signature::Verifier;
    verifier.verify(b"rsa message", &signature).expect("PKCS#1 v1.5 signature verifies");
    assert_eq!(sign(&mut card, 0x07, 0x9A, &block[1..]).1, 0x6A80, "block shorter than the modulus");
}

#[test]
fn ecdh_with_the_key_management_key() {
    let mut card = admin_card();
    let (template, _) = generate(&mut card, 0x9D, 0x11);
    let card_public = p256::PublicKey::from_sec1_bytes(&public_point(&template)).unwrap();
    let ours = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let our_point = ours.public_key().to_sec1_bytes();
    assert_eq!(verify(&mut card, b"123456"), 0x9000);
    let mut body = tlv::encode(0x82, &[]);
    body.extend(tlv::encode(0x85, &our_point));
    let (resp, sw) = transmit(&mut card, 0x87, 0x11, 0x9D, &tlv::encode(0x7C, &body));
    assert_eq!(sw, 0x9000);
    let shared = tlv::find(tlv::find(&resp, 0x7C).unwrap().unwrap(), 0x82).unwrap().unwrap().to_vec();
    let expected = p256::ecdh::diffie_hellman(ours.to_nonzero_scalar(), card_public.as_affine());
    assert_eq!(shared, expected.raw_secret_bytes().to_vec());
}
