//! Signatures made by the `openssl` command line verify with `ukey_api::crypto::verify`, and
//! OpenSSL's private keys import into `SoftwareKey` with the same public key.
//! SM2 always passes `distid`: OpenSSL 3.0's default SM2 id is empty, not GM/T 0009's.

mod common;

use common::{Scratch, openssl_ok};
use ukey_api::crypto::{
    PssSaltLen, SignData, SoftwareKey, VerifyOptions, prepare_input, public_key_from_pem_or_der, verify_signature,
    verify_signature_with,
};
use ukey_api::{DEFAULT_SM2_ID, KeyAlgorithm, Mechanism};

const MESSAGE: &[u8] = b"signed by openssl, checked by ukey\n";

/// Generates a key with OpenSSL; returns (scratch, private PEM path, SPKI DER).
fn openssl_key(genpkey_args: &[&str]) -> (Scratch, std::path::PathBuf, Vec<u8>) {
    let scratch = Scratch::new();
    let key = scratch.path("key.pem");
    let public = scratch.path("pub.pem");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"genpkey"];
    for a in genpkey_args {
        args.push(a);
    }
    args.push(&"-out");
    args.push(&key);
    openssl_ok(&args);
    openssl_ok(&[&"pkey", &"-in", &key, &"-pubout", &"-out", &public]);
    let spki = public_key_from_pem_or_der(&std::fs::read(&public).unwrap()).unwrap();
    // The same key imported into ukey has the same public key.
    let imported = SoftwareKey::from_pkcs8(&std::fs::read(&key).unwrap()).unwrap();
    assert_eq!(imported.public_key_spki(), spki.as_slice());
    (scratch, key, spki)
}

/// `openssl dgst -sign` over MESSAGE with extra options; returns the signature bytes.
fn openssl_sign(scratch: &Scratch, key: &std::path::Path, dgst: &str, extra: &[&str]) -> Vec<u8> {
    let msg = scratch.write("msg", MESSAGE);
    let sig = scratch.path("sig");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"dgst", &dgst, &"-sign", &key];
    for e in extra {
        args.push(e);
    }
    args.extend([&"-out" as &dyn AsRef<std::ffi::OsStr>, &sig, &msg]);
    openssl_ok(&args);
    std::fs::read(sig).unwrap()
}

fn assert_verifies_only_for_message(spki: &[u8], mech: &Mechanism, sig: &[u8]) {
    verify_signature(spki, mech, SignData::Message(MESSAGE), sig).unwrap();
    let err = verify_signature(spki, mech, SignData::Message(b"tampered"), sig).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn sm2_default_and_custom_id() {
    let (scratch, key, spki) = openssl_key(&["-algorithm", "SM2"]);
    let sig = openssl_sign(&scratch, &key, "-sm3", &["-sigopt", "distid:1234567812345678"]);
    assert_verifies_only_for_message(&spki, &Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() }, &sig);
    let sig = openssl_sign(&scratch, &key, "-sm3", &["-sigopt", "distid:bob@example.cn"]);
    assert_verifies_only_for_message(&spki, &Mechanism::Sm2Sm3 { user_id: b"bob@example.cn".to_vec() }, &sig);
    // The signature binds the id: under the default id it must fail.
    let default = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
    assert!(verify_signature(&spki, &default, SignData::Message(MESSAGE), &sig).is_err());
}

#[test]
fn sm2_prehash_matches_openssl_pkeyutl() {
    // pkeyutl signs its input as e directly: ukey's e = SM3(Z ‖ M) must be what OpenSSL means.
    let (scratch, key, spki) = openssl_key(&["-algorithm", "SM2"]);
    let mech = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
    let e = prepare_input(&mech, Some(&spki), SignData::Message(MESSAGE)).unwrap().digest;
    let e_path = scratch.write("e.bin", &e);
    let sig_path = scratch.path("sig");
    openssl_ok(&[&"pkeyutl", &"-sign", &"-inkey", &key, &"-in", &e_path, &"-out", &sig_path]);
    let sig = std::fs::read(sig_path).unwrap();
    verify_signature(&spki, &mech, SignData::Digest(&e), &sig).unwrap();
    verify_signature(&spki, &mech, SignData::Message(MESSAGE), &sig).unwrap();
}

#[test]
fn p256_and_p384() {
    for (curve, dgst, mech) in [
        ("P-256", "-sha256", Mechanism::EcdsaSha256),
        ("P-384", "-sha384", Mechanism::EcdsaSha384),
        ("P-384", "-sha256", Mechanism::EcdsaSha256),
    ] {
        let (scratch, key, spki) =
            openssl_key(&["-algorithm", "EC", "-pkeyopt", &format!("ec_paramgen_curve:{curve}")]);
        let sig = openssl_sign(&scratch, &key, dgst, &[]);
        assert_verifies_only_for_message(&spki, &mech, &sig);
    }
}

#[test]
fn rsa_pkcs1_and_pss() {
    let (scratch, key, spki) = openssl_key(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    assert_eq!(ukey_api::crypto::spki_algorithm(&spki).unwrap(), KeyAlgorithm::Rsa { bits: 2048 });
    let sig = openssl_sign(&scratch, &key, "-sha256", &[]);
    assert_verifies_only_for_message(&spki, &Mechanism::RsaPkcs1Sha256, &sig);
    // PKCS#1 v1.5 is not PSS.
    assert!(verify_signature(&spki, &Mechanism::RsaPssSha256, SignData::Message(MESSAGE), &sig).is_err());

    let pss32 = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"];
    let sig = openssl_sign(&scratch, &key, "-sha256", &pss32);
    assert_verifies_only_for_message(&spki, &Mechanism::RsaPssSha256, &sig);
    let exact = VerifyOptions { pss_salt: PssSaltLen::Exactly(32) };
    verify_signature_with(&spki, &Mechanism::RsaPssSha256, SignData::Message(MESSAGE), &sig, exact).unwrap();

    // OpenSSL's maximal salt verifies under auto, not when exactly 32 bytes are required.
    let pss_max = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:max"];
    let sig = openssl_sign(&scratch, &key, "-sha256", &pss_max);
    assert_verifies_only_for_message(&spki, &Mechanism::RsaPssSha256, &sig);
    assert!(verify_signature_with(&spki, &Mechanism::RsaPssSha256, SignData::Message(MESSAGE), &sig, exact).is_err());
}

#[test]
fn imported_openssl_keys_sign_for_openssl() {
    // Keys made by OpenSSL, imported into SoftwareKey, make signatures OpenSSL accepts.
    let (scratch, key_path, spki) = openssl_key(&["-algorithm", "SM2"]);
    let key = SoftwareKey::from_pkcs8(&std::fs::read(&key_path).unwrap()).unwrap();
    let mech = Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() };
    let raw = key.sign_message(&mech, MESSAGE).unwrap();
    let der = ukey_api::crypto::raw_to_der(&raw, 32).unwrap();
    let sig = scratch.write("ukey.sig", &der);
    let msg = scratch.write("m", MESSAGE);
    let public = scratch.write("spki.pem", common::pem("PUBLIC KEY", &spki).as_bytes());
    openssl_ok(&[
        &"dgst",
        &"-sm3",
        &"-verify",
        &public,
        &"-sigopt",
        &"distid:1234567812345678",
        &"-signature",
        &sig,
        &msg,
    ]);
}
