//! Shared set-up for the soft-token tests: a private store in a temp dir, PINs, deadlines.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ukey_api::{Credential, Pin};
use ukey_soft::{KdfParams, SoftDriver, SoftToken};

/// The user PIN of fixture tokens.
pub const USER_PIN: &str = "user-2468";
/// The SO PIN of fixture tokens.
pub const SO_PIN: &str = "so-13579";

/// A store in its own temp dir, with cheap KDF parameters (PIN handling is the same, only the
/// Argon2 cost differs; one test in `pin_lifecycle.rs` uses the real default).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub driver: SoftDriver,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let driver =
            SoftDriver::open(dir.path().join("tokens")).with_kdf_params(KdfParams::INSECURE_FOR_TESTS).unwrap();
        Fixture { dir, driver }
    }

    pub fn store_dir(&self) -> PathBuf {
        self.driver.dir().to_path_buf()
    }

    /// A token labelled `label` with the fixture PINs.
    pub fn token(&self, label: &str) -> SoftToken {
        self.driver.create_soft_token(label, &pin(SO_PIN), &pin(USER_PIN)).expect("create token")
    }
}

pub fn pin(value: &str) -> Pin {
    Pin::new(value).expect("valid PIN")
}

pub fn cred(value: &str) -> Credential {
    Credential::Pin(pin(value))
}

pub fn user() -> Credential {
    cred(USER_PIN)
}

pub fn so() -> Credential {
    cred(SO_PIN)
}

/// Waits for `cond` with a deadline, polling; panics with `what` when the deadline passes.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
