//! ukey's PC/SC driver against the virtual PIV card through pcscd and vpcd: key generation,
//! signatures checked by ukey's verifier, certificate import and listing, PIN lifecycle,
//! management-key algorithms, and the reset once PIN and PUK are blocked.

mod common;

use common::*;
use ukey_api::crypto::{CarrierKeySigner, CertificateOptions, parse_name, self_signed};
use ukey_api::{
    Carrier, CertificateImport, Credential, Error, InitRequest, KeyAlgorithm, Mechanism, ObjectId, Pin, PinRole,
};
use ukey_iso7816::PivOptions;
use ukey_iso7816::piv::ManagementKey;
use ukey_vpiv::{CardConfig, MgmtAlgorithm as CardMgmt, VirtualPiv};

fn self_signed_for(carrier: &dyn Carrier, key: &ukey_api::KeyObject, cn: &str) -> Vec<u8> {
    let credential = pin(PIN);
    let signer = CarrierKeySigner::new(carrier, key.id.clone(), key.public_key.clone().expect("spki"), &credential)
        .expect("signer");
    self_signed(&signer, &parse_name(&format!("CN={cn}")).expect("name"), &CertificateOptions::default())
        .expect("self-signed certificate")
}

#[test]
fn keygen_sign_verify_import_and_list_for_every_algorithm() {
    let lease = lease();
    let inserted = lease.insert(card()).expect("insert card");
    let carrier = open(&lease);
    let cases = [
        (0x9A, KeyAlgorithm::P256, Mechanism::EcdsaSha256),
        (0x9C, KeyAlgorithm::P384, Mechanism::EcdsaSha384),
        (0x9D, KeyAlgorithm::Rsa { bits: 2048 }, Mechanism::RsaPkcs1Sha256),
    ];
    let mut fingerprints = Vec::new();
    for (slot, algorithm, mechanism) in &cases {
        let key = keygen(&carrier, *slot, *algorithm);
        assert_eq!(key.algorithm, *algorithm);
        sign_and_verify(&carrier, &key, mechanism, b"signed on a virtual PIV card");
        let der = self_signed_for(&carrier, &key, &format!("ukey {algorithm}"));
        // No id: the carrier finds the slot by the key it generated.
        let stored = carrier
            .import_certificate(&CertificateImport { der, label: None, id: None }, &pin(PIN))
            .expect("import certificate");
        assert_eq!(stored.id, ObjectId(vec![*slot]));
        fingerprints.push(stored.info.sha256_fingerprint);
    }
    // RSA-PSS too, padded on the host.
    let rsa = carrier.objects().expect("objects").keys.into_iter().find(|k| k.id.0 == [0x9D]).expect("rsa key");
    sign_and_verify(&carrier, &rsa, &Mechanism::RsaPssSha256, b"pss");

    // A second, fresh carrier (as another ukey process would open) sees the same objects.
    let again = open(&lease);
    assert_eq!(again.info().id, carrier.info().id);
    assert_eq!(again.info().serial, hex::encode_upper(inserted.slot().card.guid()));
    let list = again.objects().expect("objects");
    let mut listed: Vec<String> = list.certificates.iter().map(|c| c.info.sha256_fingerprint.clone()).collect();
    listed.sort();
    fingerprints.sort();
    assert_eq!(listed, fingerprints);
    assert!(list.problems.is_empty(), "{:?}", list.problems);
    let key_9c = list.keys.iter().find(|k| k.id.0 == [0x9C]).expect("9c key");
    assert!(key_9c.always_authenticate);
    sign_and_verify(&again, key_9c, &Mechanism::EcdsaSha384, b"from the listed key");
    // A certificate for a key the card does not hold is refused.
    let other = keygen(&again, 0x9E, KeyAlgorithm::P256);
    let foreign = self_signed_for(&again, &other, "foreign");
    let err = again
        .import_certificate(&CertificateImport { der: foreign, label: None, id: Some(ObjectId(vec![0x9A])) }, &pin(PIN))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
}

#[test]
fn pin_state_wrong_pin_block_unblock_and_change() {
    let lease = lease();
    let inserted = lease.insert(card()).expect("insert card");
    let carrier = open(&lease);
    let state = carrier.pin_state().expect("pin state");
    assert_eq!(state.user.retries_left, Some(3));
    // Reading the state spent nothing.
    assert_eq!(inserted.slot().card.pin_tries_left(), 3);

    let err = carrier.verify_pin(PinRole::User, &pin("999999")).unwrap_err();
    assert!(matches!(err, Error::WrongPin { retries_left: Some(2), .. }), "{err:?}");
    assert_eq!(carrier.pin_state().unwrap().user.retries_left, Some(2));
    // The right PIN resets the counter.
    carrier.verify_pin(PinRole::User, &pin(PIN)).expect("right PIN");
    assert_eq!(carrier.pin_state().unwrap().user.retries_left, Some(3));
    assert!(!inserted.slot().card.pin_verified(), "the PIN must be logged out after the operation");

    for left in [2, 1, 0] {
        let err = carrier.verify_pin(PinRole::User, &pin("999999")).unwrap_err();
        assert!(matches!(err, Error::WrongPin { retries_left: Some(n), .. } if n == left), "{err:?}");
    }
    let err = carrier.verify_pin(PinRole::User, &pin(PIN)).unwrap_err();
    assert!(matches!(err, Error::PinLocked { role: PinRole::User }), "{err:?}");
    assert!(carrier.pin_state().unwrap().user.locked);

    carrier.unblock_pin(&pin(PUK), &Pin::new("246810").unwrap()).expect("unblock with PUK");
    carrier.verify_pin(PinRole::User, &pin("246810")).expect("new PIN works");
    carrier.change_pin(PinRole::User, &pin("246810"), &Pin::new("13579135").unwrap()).expect("change PIN");
    carrier.verify_pin(PinRole::User, &pin("13579135")).expect("changed PIN works");
    carrier.change_pin(PinRole::So, &pin(PUK), &Pin::new("87654321").unwrap()).expect("change PUK");
    let err = carrier.unblock_pin(&pin(PUK), &Pin::new("111111").unwrap()).unwrap_err();
    assert!(matches!(err, Error::WrongPin { role: PinRole::So, retries_left: Some(2), .. }), "{err:?}");
    carrier.verify_pin(PinRole::So, &pin("87654321")).expect("changed PUK verifies");
}

#[test]
fn management_key_mutual_authentication_for_every_algorithm() {
    let cases = [
        (CardMgmt::Tdes, "3des", 24),
        (CardMgmt::Aes128, "aes128", 16),
        (CardMgmt::Aes192, "aes192", 24),
        (CardMgmt::Aes256, "aes256", 32),
    ];
    let lease = lease();
    for (card_alg, name, len) in cases {
        let key: Vec<u8> = (1..=len as u8).collect();
        let config = CardConfig { mgmt_algorithm: card_alg, mgmt_key: key.clone().into(), ..CardConfig::default() };
        let inserted = lease.insert(VirtualPiv::new(config).expect("card")).expect("insert");
        let options = PivOptions {
            management_key: Some(ManagementKey::parse(&format!("{name}:{}", hex::encode(&key))).unwrap()),
        };
        let carrier = open_with(&lease, options);
        let generated = keygen(&carrier, 0x9A, KeyAlgorithm::P256);
        sign_and_verify(&carrier, &generated, &Mechanism::EcdsaSha256, name.as_bytes());
        // The wrong key is refused with a message that says what to set.
        let mut wrong = key.clone();
        wrong[0] ^= 0xFF;
        let options = PivOptions {
            management_key: Some(ManagementKey::parse(&format!("{name}:{}", hex::encode(&wrong))).unwrap()),
        };
        let carrier = open_with(&lease, options);
        let request = ukey_api::KeyGenRequest {
            algorithm: KeyAlgorithm::P256,
            label: "x".into(),
            id: Some(ObjectId(vec![0x9A])),
        };
        let err = carrier.generate_key(&request, &pin(PIN)).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied(_)), "{name}: {err:?}");
        inserted.remove().expect("remove");
    }
}

#[test]
fn default_management_key_is_found_on_an_aes192_card() {
    let lease = lease();
    let config = CardConfig {
        mgmt_algorithm: CardMgmt::Aes192,
        mgmt_key: ukey_vpiv::config::DEFAULT_MGMT_KEY.to_vec().into(),
        ..CardConfig::default()
    };
    let _inserted = lease.insert(VirtualPiv::new(config).expect("card")).expect("insert");
    let carrier = open(&lease);
    keygen(&carrier, 0x9A, KeyAlgorithm::P256);
}

#[test]
fn initialize_resets_a_card_after_blocking_pin_and_puk_and_keeps_its_identity() {
    let lease = lease();
    let inserted = lease.insert(card()).expect("insert card");
    let carrier = open(&lease);
    let key = keygen(&carrier, 0x9A, KeyAlgorithm::P256);
    let der = self_signed_for(&carrier, &key, "before reset");
    carrier.import_certificate(&CertificateImport { der, label: None, id: None }, &pin(PIN)).expect("import");
    let id = carrier.info().id.clone();

    // A wrong PUK touches nothing.
    let bad = InitRequest { so_pin: Pin::new("00001111").unwrap(), label: String::new(), user_pin: None };
    let err = carrier.initialize(&bad).unwrap_err();
    assert!(matches!(err, Error::WrongPin { role: PinRole::So, .. }), "{err:?}");
    assert_eq!(carrier.objects().unwrap().certificates.len(), 1);

    let request = InitRequest {
        so_pin: Pin::new(PUK).unwrap(),
        label: "ignored".into(),
        user_pin: Some(Pin::new("11223344").unwrap()),
    };
    carrier.initialize(&request).expect("initialize");
    assert!(carrier.objects().unwrap().certificates.is_empty());
    assert_eq!(inserted.slot().card.key_algorithm(0x9A), None);
    carrier.verify_pin(PinRole::User, &pin("11223344")).expect("new PIN");
    assert_eq!(open(&lease).info().id, id, "the card keeps its CHUID identity");

    // A card whose PIN and PUK are both blocked already is in its reset state: any PUK value
    // that has the right length starts it over.
    for _ in 0..3 {
        let _ = carrier.verify_pin(PinRole::User, &pin("999999"));
        let _ = carrier.unblock_pin(&pin("00000000"), &Pin::new("999999").unwrap());
    }
    assert!(carrier.pin_state().unwrap().user.locked);
    let request = InitRequest { so_pin: Pin::new("55667788").unwrap(), label: String::new(), user_pin: None };
    carrier.initialize(&request).expect("initialize from the blocked state");
    carrier.verify_pin(PinRole::User, &pin(PIN)).expect("factory PIN after reset");
    carrier.verify_pin(PinRole::So, &pin("55667788")).expect("PUK set by initialize");
    let _ = Credential::ProtectedPath;
}
