//! The SM2 signature example of GM/T 0003.5-2012 / GB/T 32918.5-2017 Annex A (the one OpenSSL's
//! `test/sm2_internal_test.c` checks): default id `1234567812345678`, message "message digest".
//! Checks Z, e, the public key, the known signature, and r, s recomputed with the fixed k.

use sm2::elliptic_curve::PrimeField;
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::point::AffineCoordinates;
use sm2::pkcs8::EncodePrivateKey;
use sm2::{ProjectivePoint, Scalar, U256};
use ukey_api::crypto::{SignData, SoftwareKey, prepare_input, raw_to_der, sm2_e, sm2_z, verify_signature};
use ukey_api::{DEFAULT_SM2_ID, KeyAlgorithm, Mechanism};

const D: &str = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8";
const PUBLIC: &str = "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020\
                      ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13";
const MESSAGE: &[u8] = b"message digest";
const Z: &str = "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3";
const E: &str = "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640";
const K: &str = "59276e27d506861a16680f3ad9c02dccef3cc1fa3cdbe4ce6d54b80deac1bc21";
const R: &str = "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3";
const S: &str = "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa";

fn annex_a_key() -> SoftwareKey {
    let secret = sm2::SecretKey::from_slice(&hex::decode(D).unwrap()).unwrap();
    SoftwareKey::from_pkcs8_der(secret.to_pkcs8_der().unwrap().as_bytes()).unwrap()
}

fn scalar(hex_text: &str) -> Scalar {
    let bytes: [u8; 32] = hex::decode(hex_text).unwrap().try_into().unwrap();
    Scalar::from_repr(bytes.into()).unwrap()
}

#[test]
fn z_and_e_match_the_standard() {
    let key = annex_a_key();
    let point = hex::decode(PUBLIC).unwrap();
    assert_eq!(hex::encode(sm2_z(key.public_key_spki(), DEFAULT_SM2_ID).unwrap()), Z);
    assert_eq!(hex::encode(sm2_z(&point, DEFAULT_SM2_ID).unwrap()), Z);
    assert_eq!(hex::encode(sm2_e(&point, DEFAULT_SM2_ID, MESSAGE).unwrap()), E);
    let mech = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
    let input = prepare_input(&mech, Some(key.public_key_spki()), SignData::Message(MESSAGE)).unwrap();
    assert_eq!(hex::encode(&input.digest), E);
}

#[test]
fn public_key_is_derived_from_d() {
    let key = annex_a_key();
    assert_eq!(key.algorithm(), KeyAlgorithm::Sm2);
    // The SPKI ends with the uncompressed point.
    assert!(hex::encode(key.public_key_spki()).ends_with(PUBLIC));
}

#[test]
fn known_signature_verifies_raw_and_der() {
    let key = annex_a_key();
    let mech = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
    let raw = hex::decode(format!("{R}{S}")).unwrap();
    let der = raw_to_der(&raw, 32).unwrap();
    verify_signature(key.public_key_spki(), &mech, SignData::Message(MESSAGE), &raw).unwrap();
    verify_signature(key.public_key_spki(), &mech, SignData::Message(MESSAGE), &der).unwrap();
    verify_signature(key.public_key_spki(), &mech, SignData::Digest(&hex::decode(E).unwrap()), &der).unwrap();
    // A different id (the draft's ALICE123@YAHOO.COM) or message must not verify.
    let alice = Mechanism::Sm2Sm3 { user_id: b"ALICE123@YAHOO.COM".to_vec() };
    assert!(verify_signature(key.public_key_spki(), &alice, SignData::Message(MESSAGE), &raw).is_err());
    assert!(verify_signature(key.public_key_spki(), &mech, SignData::Message(b"message digesT"), &raw).is_err());
}

#[test]
fn fixed_k_reproduces_r_and_s() {
    let d = scalar(D);
    let k = scalar(K);
    let e_bytes: [u8; 32] = hex::decode(E).unwrap().try_into().unwrap();
    let e = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&e_bytes));
    let x1 = (ProjectivePoint::GENERATOR * k).to_affine().x();
    let r = e + <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&x1));
    let one_plus_d_inv = (d + Scalar::ONE).invert().unwrap();
    let s = one_plus_d_inv * (k - r * d);
    assert_eq!(hex::encode(r.to_repr()), R);
    assert_eq!(hex::encode(s.to_repr()), S);
    assert!(!bool::from(s.is_zero()));
}

#[test]
fn software_key_signs_verifiably_with_the_annex_a_key() {
    let key = annex_a_key();
    let mech = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
    let input = prepare_input(&mech, Some(key.public_key_spki()), SignData::Message(MESSAGE)).unwrap();
    let raw = key.sign_digest(&mech, &input).unwrap();
    // Randomised k: a fresh signature differs from the standard's but verifies.
    assert_ne!(hex::encode(&raw), format!("{R}{S}"));
    verify_signature(key.public_key_spki(), &mech, SignData::Message(MESSAGE), &raw).unwrap();
}
