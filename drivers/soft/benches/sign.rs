//! Soft-token SM2 throughput next to OpenSSL's, measured in the same run.
//!
//! Reports:
//! - `sm2/sign_digest_unlocked`: an SM2 signature over a prepared digest with the key already
//!   decrypted (what the soft token does once the PIN has unlocked the key; it is the core's
//!   `SoftwareKey::sign_digest`, the same code the token calls);
//! - `sm2/verify_digest`: verifying such a signature;
//! - `sm2/carrier_sign_default_kdf`: the whole `Carrier::sign` — lock, re-read the file, spend the
//!   try on disk, Argon2id with the default parameters, unwrap the master key, decrypt the key,
//!   sign, restore the counter on disk;
//! - `sm2/carrier_sign_cheap_kdf`: the same with the cheapest Argon2 parameters, which isolates
//!   the file and lock overhead (two fsynced atomic writes per signature);
//! - `openssl speed -seconds 3 sm2`, parsed, and the ratio of our unlocked sign rate to it (the
//!   goal is at least 3x). Both rates are per second of the process's own CPU time (what
//!   `openssl speed` reports without `-elapsed`), so other load on the machine does not skew the
//!   ratio.
//!
//! Run: `cargo bench -p ukey-soft --bench sign` (about a minute).

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ukey_api::crypto::{SignData, SoftwareKey, verify_signature};
use ukey_api::{Carrier, Credential, KeyAlgorithm, KeyGenRequest, Pin, SignInput};
use ukey_soft::{KdfParams, SoftDriver, SoftToken};

const DIGEST: [u8; 32] = [0x42; 32];

fn pin(value: &str) -> Pin {
    Pin::new(value).expect("PIN")
}

/// A token in `dir` with one SM2 key, with the given KDF cost.
fn token_with_key(dir: &std::path::Path, kdf: KdfParams) -> (SoftToken, ukey_api::KeyObject) {
    let driver = SoftDriver::open(dir).with_kdf_params(kdf).expect("KDF parameters");
    let token = driver.create_soft_token("bench", &pin("so-pin-1"), &pin("user-pin-1")).expect("create token");
    let key = token
        .generate_key(
            &KeyGenRequest { algorithm: KeyAlgorithm::Sm2, label: "sm2".into(), id: None },
            &Credential::Pin(pin("user-pin-1")),
        )
        .expect("generate SM2 key");
    (token, key)
}

fn benches(c: &mut Criterion) {
    let mechanism = KeyAlgorithm::Sm2.default_mechanism();
    let input = SignInput { digest: DIGEST.to_vec(), message: None };
    let key = SoftwareKey::generate(KeyAlgorithm::Sm2).expect("SM2 key");
    let signature = key.sign_digest(&mechanism, &input).expect("sign");

    let mut group = c.benchmark_group("sm2");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign_digest_unlocked", |b| b.iter(|| key.sign_digest(&mechanism, black_box(&input))));
    group.bench_function("verify_digest", |b| {
        b.iter(|| verify_signature(key.public_key_spki(), &mechanism, SignData::Digest(&DIGEST), black_box(&signature)))
    });

    let auth = Credential::Pin(pin("user-pin-1"));
    let store = tempfile::tempdir().expect("temp dir");
    let (token, token_key) = token_with_key(&store.path().join("default"), KdfParams::DEFAULT);
    group.sample_size(10);
    group.bench_function("carrier_sign_default_kdf", |b| {
        b.iter(|| token.sign(&token_key.id, &mechanism, black_box(&input), &auth).expect("sign"))
    });
    let (cheap, cheap_key) = token_with_key(&store.path().join("cheap"), KdfParams::INSECURE_FOR_TESTS);
    group.bench_function("carrier_sign_cheap_kdf", |b| {
        b.iter(|| cheap.sign(&cheap_key.id, &mechanism, black_box(&input), &auth).expect("sign"))
    });
    group.finish();
}

/// CPU time this thread has used: what `openssl speed` divides by too (it counts user CPU time
/// unless given `-elapsed`), so the two rates stay comparable on a busy machine.
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
}

/// Operations per CPU-second over about `seconds` of wall time, for the side-by-side line.
fn our_rate(seconds: f64, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let cpu_start = thread_cpu_time();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        op();
        n += 1;
    }
    n as f64 / (thread_cpu_time() - cpu_start).as_secs_f64()
}

/// `openssl speed -seconds 3 sm2` → (sign/s, verify/s).
fn openssl_speed_sm2() -> Result<(f64, f64), String> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "3", "sm2"])
        .output()
        .map_err(|e| format!("cannot run openssl ({e}); install it with `apt-get install openssl`"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("SM2") && l.contains("bits"))
        .ok_or_else(|| format!("no SM2 line in `openssl speed` output:\n{text}"))?;
    let numbers: Vec<f64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    match numbers.as_slice() {
        [.., sign, verify] => Ok((*sign, *verify)),
        _ => Err(format!("cannot read rates from `{line}`")),
    }
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    if test_mode {
        return;
    }

    let openssl = openssl_speed_sm2();
    let mechanism = KeyAlgorithm::Sm2.default_mechanism();
    let input = SignInput { digest: DIGEST.to_vec(), message: None };
    let key = SoftwareKey::generate(KeyAlgorithm::Sm2).expect("SM2 key");
    let signature = key.sign_digest(&mechanism, &input).expect("sign");
    let sign_rate = our_rate(3.0, || {
        black_box(key.sign_digest(&mechanism, &input).expect("sign"));
    });
    let verify_rate = our_rate(3.0, || {
        black_box(verify_signature(key.public_key_spki(), &mechanism, SignData::Digest(&DIGEST), &signature).is_ok());
    });
    println!();
    println!("== SM2, same run ==");
    println!("ukey soft token (unlocked key): {sign_rate:>9.1} sign/s {verify_rate:>9.1} verify/s  (per CPU-second)");
    match openssl {
        Ok((o_sign, o_verify)) => {
            println!("openssl speed -seconds 3 sm2:   {o_sign:>9.1} sign/s {o_verify:>9.1} verify/s");
            println!(
                "ratio ukey/openssl:             {:>9.2}x sign   {:>9.2}x verify (goal: sign >= 3x)",
                sign_rate / o_sign,
                verify_rate / o_verify
            );
        }
        Err(e) => {
            eprintln!("OpenSSL comparison failed: {e}");
            std::process::exit(1);
        }
    }
}
