//! The operations a card-like carrier performs when handed only a block or a digest (the virtual
//! PIV card uses them): host-side RSA padding + raw RSA verifies like a normal signature, and
//! EC signatures over a bare digest verify.

use ukey_api::crypto::rsapad::{emsa_pkcs1v15_sha256, emsa_pss_sha256, rsa_block_for};
use ukey_api::crypto::{SignData, SoftwareKey, prepare_input, verify_signature};
use ukey_api::{KeyAlgorithm, Mechanism};

#[test]
fn rsa_padding_plus_raw_operation_is_a_valid_signature() {
    let key = SoftwareKey::generate(KeyAlgorithm::Rsa { bits: 2048 }).unwrap();
    let spki = key.public_key_spki();
    let msg = b"piv card signs a block";
    let digest = prepare_input(&Mechanism::RsaPkcs1Sha256, Some(spki), SignData::Message(msg)).unwrap().digest;

    let block = emsa_pkcs1v15_sha256(&digest, 256).unwrap();
    let sig = key.rsa_private_raw(&block).unwrap();
    verify_signature(spki, &Mechanism::RsaPkcs1Sha256, SignData::Message(msg), &sig).unwrap();
    // PKCS#1 v1.5 is deterministic: the same bytes as the software signer's.
    let input = prepare_input(&Mechanism::RsaPkcs1Sha256, Some(spki), SignData::Message(msg)).unwrap();
    assert_eq!(sig.as_slice(), key.sign_digest(&Mechanism::RsaPkcs1Sha256, &input).unwrap().as_slice());

    let block = emsa_pss_sha256(&digest, 2048).unwrap();
    let sig = key.rsa_private_raw(&block).unwrap();
    verify_signature(spki, &Mechanism::RsaPssSha256, SignData::Message(msg), &sig).unwrap();
    let block = rsa_block_for(&Mechanism::RsaPssSha256, &digest, 2048).unwrap();
    verify_signature(spki, &Mechanism::RsaPssSha256, SignData::Digest(&digest), &key.rsa_private_raw(&block).unwrap())
        .unwrap();

    // A block of the wrong length or not below the modulus is refused.
    assert!(key.rsa_private_raw(&[1u8; 255]).is_err());
    assert!(key.rsa_private_raw(&[0xffu8; 256]).is_err());
}

#[test]
fn ec_prehash_signatures_verify() {
    for (alg, mech) in [
        (KeyAlgorithm::P256, Mechanism::EcdsaSha256),
        (KeyAlgorithm::P384, Mechanism::EcdsaSha384),
        (KeyAlgorithm::Sm2, KeyAlgorithm::Sm2.default_mechanism()),
    ] {
        let key = SoftwareKey::generate(alg).unwrap();
        let spki = key.public_key_spki();
        let digest = prepare_input(&mech, Some(spki), SignData::Message(b"m")).unwrap().digest;
        let raw = key.sign_ec_prehash(&digest).unwrap();
        verify_signature(spki, &mech, SignData::Message(b"m"), &raw).unwrap();
        assert!(key.rsa_private_raw(&[0u8; 32]).is_err());
    }
    let sm2 = SoftwareKey::generate(KeyAlgorithm::Sm2).unwrap();
    assert!(sm2.sign_ec_prehash(&[0u8; 20]).is_err());
}
