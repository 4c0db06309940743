//! Attribute values a vendor PKCS#11 module returns (CKA_EC_PARAMS, CKA_EC_POINT, CKA_MODULUS and
//! CKA_PUBLIC_EXPONENT, CKA_LABEL): ukey turns them into public keys and names. Never a panic;
//! a point accepted for a curve has that curve's size and becomes an SPKI the core reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_api::KeyAlgorithm;
use ukey_api::crypto::spki_algorithm;
use ukey_pkcs11::objects::label_text;
use ukey_pkcs11::pubkey;

fuzz_target!(|data: &[u8]| {
    let _ = pubkey::curve_from_params(data);
    let _ = label_text(data);
    let _ = pubkey::spki_point(data);
    for algorithm in [KeyAlgorithm::P256, KeyAlgorithm::P384, KeyAlgorithm::Sm2] {
        if let Ok(point) = pubkey::ec_point(data, algorithm) {
            let field = algorithm.ec_field_len().expect("an EC algorithm");
            assert_eq!(point.len(), 2 * field + 1);
            let spki = pubkey::ec_spki(algorithm, &point).expect("an accepted point encodes");
            assert_eq!(pubkey::spki_point(&spki), Some(point));
        }
    }
    let (modulus, exponent) = data.split_at(data.len() / 2);
    let _ = pubkey::rsa_bits(modulus);
    if let Ok(spki) = pubkey::rsa_spki(modulus, exponent) {
        let _ = spki_algorithm(&spki);
    }
});
