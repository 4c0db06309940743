//! Signatures made by `SoftwareKey` over `prepare_input` verify with `openssl dgst -verify`.
//! SM2 always passes `distid`: OpenSSL 3.0's default SM2 id is empty, not GM/T 0009's.

mod common;

use common::{Scratch, openssl, openssl_ok, pem};
use ukey_api::crypto::{SignData, SignatureFormat, SoftwareKey, encode_signature, prepare_input};
use ukey_api::{DEFAULT_SM2_ID, KeyAlgorithm, Mechanism};

const MESSAGE: &[u8] = b"ukey cross-check: the quick brown fox signs over the lazy dog\n";

/// Signs MESSAGE with a fresh key and checks `openssl dgst` accepts it, and rejects it for a
/// different message.
fn ukey_signs_openssl_verifies(alg: KeyAlgorithm, mechanism: Mechanism, dgst: &str, extra: &[&str]) {
    let scratch = Scratch::new();
    let key = SoftwareKey::generate(alg).unwrap();
    let input = prepare_input(&mechanism, Some(key.public_key_spki()), SignData::Message(MESSAGE)).unwrap();
    let raw = key.sign_digest(&mechanism, &input).unwrap();
    let sig = encode_signature(alg, &raw, SignatureFormat::Der).unwrap();
    let pub_pem = scratch.write("pub.pem", pem("PUBLIC KEY", key.public_key_spki()).as_bytes());
    let sig_path = scratch.write("sig.der", &sig);
    let msg_path = scratch.write("msg", MESSAGE);
    let other_path = scratch.write("other", b"another message");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"dgst", &dgst, &"-verify", &pub_pem];
    for e in extra {
        args.push(e);
    }
    args.push(&"-signature");
    args.push(&sig_path);
    let mut good = args.clone();
    good.push(&msg_path);
    let out = openssl_ok(&good);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));
    let mut bad = args;
    bad.push(&other_path);
    assert!(!openssl(&bad).status.success(), "openssl accepted a signature over another message");
}

#[test]
fn sm2_default_id() {
    ukey_signs_openssl_verifies(
        KeyAlgorithm::Sm2,
        Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() },
        "-sm3",
        &["-sigopt", "distid:1234567812345678"],
    );
}

#[test]
fn sm2_custom_id() {
    ukey_signs_openssl_verifies(
        KeyAlgorithm::Sm2,
        Mechanism::Sm2Sm3 { user_id: b"alice@example.cn".to_vec() },
        "-sm3",
        &["-sigopt", "distid:alice@example.cn"],
    );
}

#[test]
fn p256_sha256() {
    ukey_signs_openssl_verifies(KeyAlgorithm::P256, Mechanism::EcdsaSha256, "-sha256", &[]);
}

#[test]
fn p384_sha384() {
    ukey_signs_openssl_verifies(KeyAlgorithm::P384, Mechanism::EcdsaSha384, "-sha384", &[]);
}

#[test]
fn p384_sha256() {
    ukey_signs_openssl_verifies(KeyAlgorithm::P384, Mechanism::EcdsaSha256, "-sha256", &[]);
}

#[test]
fn rsa_pkcs1_and_pss() {
    // One RSA key for both paddings keeps the (slow, debug-build) key generation to one.
    ukey_signs_openssl_verifies(KeyAlgorithm::Rsa { bits: 2048 }, Mechanism::RsaPkcs1Sha256, "-sha256", &[]);
    ukey_signs_openssl_verifies(
        KeyAlgorithm::Rsa { bits: 2048 },
        Mechanism::RsaPssSha256,
        "-sha256",
        &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"],
    );
}
