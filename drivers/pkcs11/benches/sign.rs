//! ukey's PKCS#11 sign path against bare cryptoki on the same SoftHSM key (P-256, `CKM_ECDSA`).
//!
//! Two pairs:
//! - `kept-login`: the login is kept between signatures (the agent's session policy). ukey's
//!   `Carrier::sign` (lock, cached key, mechanism plan, `C_SignInit` + `C_Sign`, signature
//!   decoding) against a bare `Session::sign` loop on a handle found once. Goal: ukey ≥ 0.95× the
//!   bare rate.
//! - `login-per-signature`: ukey's default policy (login, find the key, sign, logout, every
//!   time) against the same calls made bare.
//!
//! The bench makes its own SoftHSM token in a temporary directory and re-runs itself with
//! `SOFTHSM2_CONF` pointing there (SoftHSM reads it once, at `C_Initialize`), once per side of
//! each pair, each with a fresh token: run in one process right after 20k bare signatures, ukey
//! measured 0.67-0.71x the bare rate; each side in a process of its own, the same code measured
//! level, and so did the thread CPU time per signature, which each side now also prints.
//!
//!     cargo bench -p ukey-pkcs11 --bench sign
//!
//! Needs `softhsm2` (`softhsm2-util`, `/usr/lib/softhsm/libsofthsm2.so`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use cryptoki::mechanism::Mechanism as CkMechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use ukey_api::{Carrier, Credential, KeyAlgorithm, KeyGenRequest, Mechanism, Pin, SignInput};
use ukey_pkcs11::{ModuleConfig, Pkcs11Config, Pkcs11Driver};

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "123456";
const CHILD: &str = "UKEY_PKCS11_BENCH_CHILD";
/// Which side this child measures (`bare-cryptoki` or `ukey`).
const SIDE: &str = "UKEY_PKCS11_BENCH_SIDE";
const SIDES: [&str; 2] = ["bare-cryptoki", "ukey"];

/// True when this child measures `side`.
fn measures(side: &str) -> bool {
    std::env::var(SIDE).is_ok_and(|s| s == side)
}

fn main() {
    if std::env::var_os(CHILD).is_none() {
        parent();
        return;
    }
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    kept_login(&mut criterion);
    login_per_signature(&mut criterion);
    criterion.final_summary();
}

/// Re-runs this binary once per side, each with a fresh token and `SOFTHSM2_CONF` set.
fn parent() {
    assert!(Path::new(SOFTHSM).exists(), "{SOFTHSM} is missing: install the Debian package `softhsm2`");
    let me: PathBuf = std::env::current_exe().unwrap();
    for side in SIDES {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()))
            .unwrap();
        let status = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", "Bench", "--so-pin", "12345678", "--pin", PIN])
            .env("SOFTHSM2_CONF", &conf)
            .status()
            .expect("softhsm2-util is missing: install the Debian package `softhsm2`");
        assert!(status.success());
        let status = Command::new(&me)
            .args(std::env::args_os().skip(1))
            .env("SOFTHSM2_CONF", &conf)
            .env(CHILD, "1")
            .env(SIDE, side)
            .status()
            .unwrap();
        assert!(status.success(), "the benchmark run ({side}) failed");
    }
}

/// Signatures timed for the CPU figure.
const CPU_ROUNDS: u32 = 2000;

/// Runs `sign` [`CPU_ROUNDS`] times and prints the calling thread's CPU time per call: SoftHSM
/// signs on the calling thread, so this is ukey's and SoftHSM's work together, and unlike wall
/// time it hardly moves with the load of a shared machine.
fn cpu_per_signature(name: &str, mut sign: impl FnMut()) {
    let now = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        t.tv_sec as f64 * 1e6 + t.tv_nsec as f64 / 1e3
    };
    sign();
    let start = now();
    for _ in 0..CPU_ROUNDS {
        sign();
    }
    let per = (now() - start) / f64::from(CPU_ROUNDS);
    println!("{name}: {per:.1} µs thread CPU per signature ({CPU_ROUNDS} signatures)");
}

fn driver(keep_login: bool) -> Pkcs11Driver {
    let mut module = ModuleConfig::new(SOFTHSM.into());
    module.keep_login = keep_login;
    Pkcs11Driver::new(&Pkcs11Config { modules: vec![module], p11kit: false, ..Default::default() })
}

fn user() -> Credential {
    Credential::Pin(Pin::new(PIN).unwrap())
}

fn digest() -> SignInput {
    SignInput { digest: vec![0x42; 32], message: None }
}

fn kept_login(c: &mut Criterion) {
    let driver = driver(true);
    let carrier = driver.pkcs11_carriers().unwrap().into_iter().find(|c| c.info().label == "Bench").unwrap();
    let key = carrier
        .generate_key(&KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "kept".into(), id: None }, &user())
        .unwrap();
    // The first signature logs in and keeps the login (for this application, every session).
    carrier.sign(&key.id, &Mechanism::EcdsaSha256, &digest(), &user()).unwrap();

    let module = carrier.token().module().clone();
    let session = module.ctx().open_ro_session(carrier.token().slot()).unwrap();
    let handle = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(key.id.0.clone())])
        .unwrap()[0];
    let data = [0x42u8; 32];

    let mut group = c.benchmark_group("kept-login");
    if measures("bare-cryptoki") {
        group.bench_function("bare-cryptoki", |b| {
            b.iter(|| black_box(session.sign(&CkMechanism::Ecdsa, handle, black_box(&data)).unwrap()))
        });
        cpu_per_signature("kept-login/bare-cryptoki", || {
            black_box(session.sign(&CkMechanism::Ecdsa, handle, black_box(&data)).unwrap());
        });
    }
    let input = digest();
    let credential = user();
    if measures("ukey") {
        group.bench_function("ukey", |b| {
            b.iter(|| {
                black_box(carrier.sign(&key.id, &Mechanism::EcdsaSha256, black_box(&input), &credential).unwrap())
            })
        });
        cpu_per_signature("kept-login/ukey", || {
            black_box(carrier.sign(&key.id, &Mechanism::EcdsaSha256, black_box(&input), &credential).unwrap());
        });
    }
    group.finish();
}

fn login_per_signature(c: &mut Criterion) {
    let driver = driver(false);
    let carrier = driver.pkcs11_carriers().unwrap().into_iter().find(|c| c.info().label == "Bench").unwrap();
    // kept_login left the application logged in through its driver; start this pair logged out.
    carrier.token().reset();
    let key = carrier
        .generate_key(
            &KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "per-signature".into(), id: None },
            &user(),
        )
        .unwrap();
    let module = carrier.token().module().clone();
    let slot = carrier.token().slot();
    let data = [0x42u8; 32];
    let pin = AuthPin::from(PIN.to_string());

    let mut group = c.benchmark_group("login-per-signature");
    group.sample_size(10);
    if measures("bare-cryptoki") {
        group.bench_function("bare-cryptoki", |b| {
            let session = module.ctx().open_ro_session(slot).unwrap();
            b.iter(|| {
                session.login(UserType::User, Some(&pin)).unwrap();
                let handle = session
                    .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(key.id.0.clone())])
                    .unwrap()[0];
                let sig = session.sign(&CkMechanism::Ecdsa, handle, black_box(&data)).unwrap();
                session.logout().unwrap();
                black_box(sig)
            })
        });
    }
    let input = digest();
    let credential = user();
    if measures("ukey") {
        group.bench_function("ukey", |b| {
            b.iter(|| {
                black_box(carrier.sign(&key.id, &Mechanism::EcdsaSha256, black_box(&input), &credential).unwrap())
            })
        });
    }
    group.finish();
}
