//! Several real processes on one token, and processes killed with SIGKILL in the middle of
//! writes. The test binary re-runs itself as the worker (`child_worker`, selected with an
//! environment variable), so the workers are genuine separate processes using the same code.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use ukey_api::crypto::{SignData, verify_signature};
use ukey_api::{
    Carrier, DataObjectWrite, Error, KeyAlgorithm, KeyGenRequest, Mechanism, PinRole, SecretBytes, SignInput,
};
use ukey_soft::{KdfParams, SoftDriver};

const ENV_ROLE: &str = "UKEY_SOFT_TEST_CHILD";
const ENV_DIR: &str = "UKEY_SOFT_TEST_DIR";
const ENV_SERIAL: &str = "UKEY_SOFT_TEST_SERIAL";
const ENV_INDEX: &str = "UKEY_SOFT_TEST_INDEX";

/// Size of the value the kill test rewrites, large enough that writes take a while.
const BIG: usize = 128 * 1024;

fn spawn_child(role: &str, dir: &Path, serial: &str, index: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
        .env(ENV_ROLE, role)
        .env(ENV_DIR, dir)
        .env(ENV_SERIAL, serial)
        .env(ENV_INDEX, index.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the worker process")
}

fn wait_all(children: Vec<Child>) {
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "a worker process failed: {status}");
    }
}

const DIGEST: [u8; 32] = [0x5a; 32];

fn digest_input() -> SignInput {
    SignInput { digest: DIGEST.to_vec(), message: None }
}

fn digest_data() -> SignData<'static> {
    SignData::Digest(&DIGEST)
}

fn data(label: String, value: Vec<u8>, private: bool) -> DataObjectWrite {
    DataObjectWrite { label, application: "proc-test".into(), id: None, value: SecretBytes::new(value), private }
}

/// The worker side. Does nothing unless started by one of the tests below.
#[test]
fn child_worker() {
    let Ok(role) = std::env::var(ENV_ROLE) else { return };
    let dir = std::env::var(ENV_DIR).unwrap();
    let serial = std::env::var(ENV_SERIAL).unwrap();
    let index: usize = std::env::var(ENV_INDEX).unwrap().parse().unwrap();
    let driver = SoftDriver::open(dir).with_kdf_params(KdfParams::INSECURE_FOR_TESTS).unwrap();
    let token = driver.token(&serial).unwrap();
    match role.as_str() {
        "wrong-pins" => {
            for _ in 0..5 {
                assert!(matches!(token.verify_pin(PinRole::User, &cred("wrong-pin")), Err(Error::WrongPin { .. })));
            }
        }
        "writer" => {
            let shared = token.objects().unwrap().keys.into_iter().find(|k| k.label == "shared").unwrap();
            let own = token
                .generate_key(
                    &KeyGenRequest { algorithm: KeyAlgorithm::P256, label: format!("own-{index}"), id: None },
                    &user(),
                )
                .unwrap();
            for j in 0..6 {
                for key in [&shared, &own] {
                    let signature = token.sign(&key.id, &Mechanism::EcdsaSha256, &digest_input(), &user()).unwrap();
                    verify_signature(
                        key.public_key.as_deref().unwrap(),
                        &Mechanism::EcdsaSha256,
                        digest_data(),
                        &signature,
                    )
                    .unwrap();
                }
                let value = format!("{index}-{j}").repeat(100).into_bytes();
                token.write_data(&data(format!("c{index}-{j}"), value, j % 2 == 0), &user()).unwrap();
                if j % 2 == 1 {
                    assert!(matches!(token.verify_pin(PinRole::User, &cred("wrong-pin")), Err(Error::WrongPin { .. })));
                }
                token.objects().unwrap();
            }
        }
        "loop-writer" => {
            for n in 0u32.. {
                let byte = (n % 251) as u8;
                token.write_data(&data("counter".into(), vec![byte; BIG], false), &user()).unwrap();
            }
        }
        "slow-verify" => {
            let _ = token.verify_pin(PinRole::User, &user());
        }
        other => panic!("unknown worker role {other}"),
    }
}

#[test]
fn concurrent_wrong_pins_are_all_counted() {
    let fx = Fixture::new();
    let driver = fx.driver.clone().with_max_tries(100).unwrap();
    let token = driver.create_soft_token("shared", &pin(SO_PIN), &pin(USER_PIN)).unwrap();
    let children: Vec<Child> =
        (0..4).map(|i| spawn_child("wrong-pins", &fx.store_dir(), &token.info().serial, i)).collect();
    wait_all(children);
    assert_eq!(token.pin_state().unwrap().user.retries_left, Some(100 - 4 * 5), "no try was lost between processes");
}

#[test]
fn concurrent_processes_lose_nothing_and_corrupt_nothing() {
    let fx = Fixture::new();
    let driver = fx.driver.clone().with_max_tries(100).unwrap();
    let token = driver.create_soft_token("busy", &pin(SO_PIN), &pin(USER_PIN)).unwrap();
    let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "shared".into(), id: None };
    token.generate_key(&request, &user()).unwrap();
    let children: Vec<Child> =
        (0..4).map(|i| spawn_child("writer", &fx.store_dir(), &token.info().serial, i)).collect();
    wait_all(children);
    let objects = token.objects().unwrap();
    assert_eq!(objects.data.len(), 4 * 6, "every process's every write is there");
    for i in 0..4 {
        for j in 0..6 {
            let value = token.read_data(&format!("c{i}-{j}"), Some(&user())).unwrap();
            assert_eq!(value.as_slice(), format!("{i}-{j}").repeat(100).as_bytes());
        }
    }
    assert_eq!(objects.keys.len(), 1 + 4, "the shared key and one key per process");
    for key in &objects.keys {
        let signature = token.sign(&key.id, &Mechanism::EcdsaSha256, &digest_input(), &user()).unwrap();
        verify_signature(key.public_key.as_deref().unwrap(), &Mechanism::EcdsaSha256, digest_data(), &signature)
            .unwrap();
    }
    let state = token.pin_state().unwrap();
    assert_eq!(state.user.retries_left, Some(100), "the last signature above used the right PIN");
    token.verify_pin(PinRole::User, &user()).unwrap();
}

#[test]
fn sigkill_during_writes_leaves_a_token_that_opens() {
    let fx = Fixture::new();
    let token = fx.token("crashy");
    token.write_data(&data("counter".into(), vec![0; BIG], false), &user()).unwrap();
    let serial = token.info().serial.clone();
    for round in 0..6 {
        let before = std::fs::metadata(token.path()).unwrap().modified().unwrap();
        let mut child = spawn_child("loop-writer", &fx.store_dir(), &serial, round);
        // Let it complete a varying number of writes, then kill it wherever it is.
        let mut writes_seen = 0;
        let mut last = before;
        wait_for("the worker's writes", Duration::from_secs(60), || {
            let now = std::fs::metadata(token.path()).map(|m| m.modified().unwrap()).unwrap_or(last);
            if now != last {
                writes_seen += 1;
                last = now;
            }
            writes_seen > round
        });
        child.kill().unwrap();
        child.wait().unwrap();

        let value = token.read_data("counter", None).expect("the token opens after SIGKILL");
        assert_eq!(value.len(), BIG, "a whole value, never a torn one");
        assert!(value.iter().all(|b| *b == value[0]), "a whole value, never a mix");
        let left = token.pin_state().unwrap().user.retries_left.unwrap();
        assert!(left == 6 || left == 5, "killed mid-check at most spends the try it was checking: {left}");
        token.verify_pin(PinRole::User, &user()).unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(fx.store_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".token"))
        .collect();
    assert_eq!(names.len(), 1, "leftover temp files never look like tokens: {names:?}");
}

#[test]
fn killing_a_pin_check_never_gives_a_free_try() {
    let fx = Fixture::new();
    let token = fx.token("slow");
    // Re-wrap the user PIN with an expensive KDF (about a second), so the kill lands while the PIN
    // is being checked; the other records keep the cheap parameters to keep set-up short.
    let slow = KdfParams { m_cost_kib: 64 * 1024, t_cost: 16, p_cost: 1 };
    let slow_driver = fx.driver.clone().with_kdf_params(slow).unwrap();
    slow_driver.token(&token.info().serial).unwrap().change_pin(PinRole::User, &user(), &pin(USER_PIN)).unwrap();
    let mut child = spawn_child("slow-verify", &fx.store_dir(), &token.info().serial, 0);
    wait_for("the try to be spent on disk", Duration::from_secs(60), || {
        token.pin_state().map(|s| s.user.retries_left == Some(5)).unwrap_or(false)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(token.pin_state().unwrap().user.retries_left, Some(5), "the interrupted check cost a try");
}
