//! Throughput of the crypto core: SM2 and P-256 signing of a prepared digest (what the soft token
//! does per signature), verification, and the SM2 Z computation every SM2 signature needs.
//!
//! `cargo bench -p ukey-api --bench crypto` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use signature::hazmat::PrehashSigner;
use sm2::elliptic_curve::Generate;
use ukey_api::crypto::{SignData, SoftwareKey, prepare_input, sm2_z, verify_signature};
use ukey_api::{DEFAULT_SM2_ID, KeyAlgorithm, Mechanism};

fn bench(c: &mut Criterion) {
    let message = b"benchmark message: a short document to sign";
    for (name, alg, mech) in [
        ("sm2", KeyAlgorithm::Sm2, Mechanism::Sm2Sm3 { user_id: DEFAULT_SM2_ID.to_vec() }),
        ("p256", KeyAlgorithm::P256, Mechanism::EcdsaSha256),
    ] {
        let key = SoftwareKey::generate(alg).expect("key generation");
        let spki = key.public_key_spki().to_vec();
        let input = prepare_input(&mech, Some(&spki), SignData::Message(message)).expect("prepare");
        let sig = key.sign_digest(&mech, &input).expect("sign");

        c.bench_function(&format!("{name}/sign_digest"), |b| {
            b.iter(|| key.sign_digest(black_box(&mech), black_box(&input)).expect("sign"))
        });
        c.bench_function(&format!("{name}/verify_message"), |b| {
            b.iter(|| {
                verify_signature(black_box(&spki), &mech, SignData::Message(message), black_box(&sig)).expect("verify")
            })
        });
        c.bench_function(&format!("{name}/prepare_input"), |b| {
            b.iter(|| prepare_input(black_box(&mech), Some(&spki), SignData::Message(message)).expect("prepare"))
        });
        if alg == KeyAlgorithm::Sm2 {
            c.bench_function("sm2/z_value", |b| b.iter(|| sm2_z(black_box(&spki), DEFAULT_SM2_ID).expect("z")));
            // Baseline: the sm2 crate alone (deterministic k), to show what SoftwareKey adds.
            let raw = sm2::SecretKey::try_generate_from_rng(&mut getrandom::SysRng).expect("key");
            let crate_key = sm2::dsa::SigningKey::new("1234567812345678", &raw).expect("key");
            c.bench_function("sm2/crate_sign_prehash_baseline", |b| {
                b.iter(|| {
                    let s: sm2::dsa::Signature = crate_key.sign_prehash(black_box(&input.digest)).expect("sign");
                    s
                })
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
