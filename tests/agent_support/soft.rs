//! The soft-token fixture of the agent tests (in its own file so tests that need no carrier do
//! not depend on the soft driver): a token in the agent's store with a certified key.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::agent_support::{DEADLINE, SENTINEL_PIN, TestAgent};

/// A soft token made for a test: its serial, carrier id, and the handle of its certified key.
pub struct SoftFixture {
    pub serial: String,
    pub token: String,
    pub handle: String,
    pub cert_der: Vec<u8>,
    pub subject: String,
}

/// The SO PIN of test tokens.
pub const SO_PIN: &str = "so-pin-4242";

/// Creates a soft token in `dir` (the agent's UKEY_SOFT_DIR) with user PIN [`SENTINEL_PIN`], a
/// key of `algorithm` and a self-signed certificate for `CN=<label>`, using the soft driver and
/// the crypto core in-process (cheap KDF, `max_tries` PIN tries).
pub fn soft_token(dir: &Path, label: &str, algorithm: ukey_api::KeyAlgorithm, max_tries: u32) -> SoftFixture {
    use ukey_api::crypto::certbuild::{CertificateOptions, self_signed};
    use ukey_api::crypto::name::parse_name;
    use ukey_api::crypto::signer::CarrierKeySigner;
    use ukey_api::{CertificateImport, Credential, KeyGenRequest, Pin};

    let driver = ukey_soft::SoftDriver::open(dir)
        .with_kdf_params(ukey_soft::KdfParams::INSECURE_FOR_TESTS)
        .and_then(|d| d.with_max_tries(max_tries))
        .expect("soft driver");
    let so = Pin::new(SO_PIN).unwrap();
    let user = Pin::new(SENTINEL_PIN).unwrap();
    let token = driver.create_token(label, &so, &user).expect("create soft token");
    let cred = Credential::Pin(user);
    let key = token
        .generate_key(&KeyGenRequest { algorithm, label: label.to_string(), id: None }, &cred)
        .expect("generate key");
    let spki = key.public_key.clone().expect("public key");
    let subject = format!("CN={label}");
    let signer = CarrierKeySigner::new(token.as_ref(), key.id.clone(), spki, &cred).unwrap();
    let der = self_signed(&signer, &parse_name(&subject).unwrap(), &CertificateOptions::end_entity(30)).unwrap();
    token
        .import_certificate(&CertificateImport { der: der.clone(), label: None, id: Some(key.id.clone()) }, &cred)
        .expect("import certificate");
    let info = token.info().clone();
    SoftFixture {
        serial: info.serial.clone(),
        token: info.id.to_string(),
        handle: format!("{}#{}", info.id, key.id.to_hex()),
        cert_der: der,
        subject,
    }
}

/// The soft-token store directory the agent serves.
pub fn soft_dir(agent: &TestAgent) -> PathBuf {
    agent.dir.path().join("soft")
}

/// Waits until the agent lists `count` tokens.
pub fn wait_tokens(agent: &TestAgent, count: usize) {
    let until = Instant::now() + DEADLINE;
    let mut c = agent.unix();
    loop {
        let t = c.call("tokens.list", json!({})).expect("tokens.list");
        if t["tokens"].as_array().map(Vec::len) == Some(count) {
            return;
        }
        assert!(Instant::now() < until, "the agent never listed {count} tokens: {t}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An agent serving one fresh soft token (P-256, 3 PIN tries).
pub fn with_soft(extra: &[&str]) -> (TestAgent, SoftFixture) {
    with_soft_key(ukey_api::KeyAlgorithm::P256, 3, extra)
}

/// An agent serving one fresh soft token with a key of `algorithm`.
pub fn with_soft_key(algorithm: ukey_api::KeyAlgorithm, max_tries: u32, extra: &[&str]) -> (TestAgent, SoftFixture) {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixture = soft_token(&dir.path().join("soft"), "Alice", algorithm, max_tries);
    let agent = TestAgent::start_in(dir, extra);
    wait_tokens(&agent, 1);
    (agent, fixture)
}
