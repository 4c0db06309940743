//! SM3 known answers: GB/T 32905 examples and the RustCrypto `sm3/tests/data` vectors, plus a
//! length sweep over the block boundaries cross-checked against `openssl dgst -sm3`.

mod common;

use common::{Scratch, openssl_ok};
use ukey_api::HashAlg;

#[test]
fn gbt_32905_examples() {
    assert_eq!(
        hex::encode(HashAlg::Sm3.digest(b"abc")),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
    assert_eq!(
        hex::encode(HashAlg::Sm3.digest(&b"abcd".repeat(16))),
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    );
}

#[test]
fn rustcrypto_vectors() {
    let vectors: [(&[u8], &str); 4] = [
        (b"", "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"),
        (b"abcdefghijklmnopqrstuvwxyz", "b80fe97a4da24afc277564f66a359ef440462ad28dcc6d63adb24d5c20a61595"),
        (
            b"The quick brown fox jumps over the lazy dog",
            "5fdfe814b8573ca021983970fc79b2218c9570369b4859684e2e4c3fc76cb8ea",
        ),
        (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    ];
    for (input, want) in vectors {
        assert_eq!(hex::encode(HashAlg::Sm3.digest(input)), want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn block_boundaries_match_openssl() {
    let scratch = Scratch::new();
    for len in [1usize, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 100_003] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        let path = scratch.write(&format!("in{len}"), &data);
        for (alg, flag) in [(HashAlg::Sm3, "-sm3"), (HashAlg::Sha256, "-sha256"), (HashAlg::Sha384, "-sha384")] {
            let out = openssl_ok(&[&"dgst", &flag, &"-r", &path]);
            let text = String::from_utf8_lossy(&out.stdout);
            let theirs = text.split_whitespace().next().unwrap_or_default().to_string();
            assert_eq!(hex::encode(alg.digest(&data)), theirs, "{alg:?} over {len} bytes");
        }
    }
}
