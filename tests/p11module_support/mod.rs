//! Shared by the tests of `libukey_pkcs11.so` with real client programs: the built module, an
//! agent (the real `ukey agent` with the scripted pinentry, from `agent_support`) serving a soft
//! token that holds certified keys of every algorithm, and the clients run with the agent's
//! environment so the module finds its socket.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ukey_api::KeyAlgorithm;

use crate::agent_support::{SENTINEL_PIN, TestAgent};

/// The SO PIN of test tokens.
pub const SO_PIN: &str = "so-pin-4242";

/// The built module. The root package has the module crate as a dev-dependency, so cargo builds
/// it before these tests; its `.so` sits next to the test binaries or in `target/<profile>/`.
pub fn module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    let profile = deps.parent().expect("profile dir").to_path_buf();
    let mut candidates: Vec<PathBuf> = vec![profile.join("libukey_pkcs11.so")];
    if let Ok(entries) = std::fs::read_dir(&deps) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("libukey_pkcs11") && name.ends_with(".so") {
                candidates.push(e.path());
            }
        }
    }
    candidates
        .into_iter()
        .filter_map(|p| std::fs::metadata(&p).and_then(|m| m.modified()).ok().map(|t| (t, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| {
            panic!(
                "libukey_pkcs11.so was not built next to {}; run `cargo build -p ukey-pkcs11-module` first",
                profile.display()
            )
        })
}

/// Fails the test, saying what to install, when a client program is missing.
pub fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is missing: install the Debian package `{package}` (listed in scripts/apt-packages.txt)"
    );
}

/// One certified key on the test token.
#[derive(Debug, Clone)]
pub struct TestKey {
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// Label (of the key and its certificate).
    pub label: String,
    /// Object id, hex.
    pub id: String,
    /// The self-signed certificate, DER.
    pub cert_der: Vec<u8>,
    /// Subject, RFC 4514.
    pub subject: String,
}

/// The test token.
#[derive(Debug, Clone)]
pub struct TestToken {
    /// Token label.
    pub label: String,
    /// Serial.
    pub serial: String,
    /// Keys, in the order asked for.
    pub keys: Vec<TestKey>,
}

impl TestToken {
    /// The key of an algorithm.
    pub fn key(&self, algorithm: KeyAlgorithm) -> &TestKey {
        self.keys.iter().find(|k| k.algorithm == algorithm).expect("the token has a key of that algorithm")
    }
}

/// Creates a soft token `label` in `dir` with user PIN [`SENTINEL_PIN`] and one certified key
/// per algorithm (cheap KDF for tests).
pub fn soft_token(dir: &Path, label: &str, algorithms: &[KeyAlgorithm]) -> TestToken {
    use ukey_api::crypto::certbuild::{CertificateOptions, self_signed};
    use ukey_api::crypto::name::parse_name;
    use ukey_api::crypto::signer::CarrierKeySigner;
    use ukey_api::{CertificateImport, Credential, KeyGenRequest, Pin};

    let driver = ukey_soft::SoftDriver::open(dir)
        .with_kdf_params(ukey_soft::KdfParams::INSECURE_FOR_TESTS)
        .and_then(|d| d.with_max_tries(5))
        .expect("soft driver");
    let so = Pin::new(SO_PIN).unwrap();
    let user = Pin::new(SENTINEL_PIN).unwrap();
    let token = driver.create_token(label, &so, &user).expect("create soft token");
    let cred = Credential::Pin(user);
    let mut keys = Vec::new();
    for alg in algorithms {
        let key_label = format!("{label} {alg}");
        let key = token
            .generate_key(&KeyGenRequest { algorithm: *alg, label: key_label.clone(), id: None }, &cred)
            .expect("generate key");
        let spki = key.public_key.clone().expect("public key");
        let subject = format!("CN={label} {alg},O=ukey tests");
        let signer = CarrierKeySigner::new(token.as_ref(), key.id.clone(), spki, &cred).unwrap();
        let der = self_signed(&signer, &parse_name(&subject).unwrap(), &CertificateOptions::end_entity(30)).unwrap();
        token
            .import_certificate(
                &CertificateImport { der: der.clone(), label: Some(key_label.clone()), id: Some(key.id.clone()) },
                &cred,
            )
            .expect("import certificate");
        keys.push(TestKey { algorithm: *alg, label: key_label, id: key.id.to_hex(), cert_der: der, subject });
    }
    let info = token.info().clone();
    TestToken { label: info.label, serial: info.serial, keys }
}

/// Every algorithm the module signs with.
pub const ALL: [KeyAlgorithm; 4] =
    [KeyAlgorithm::P256, KeyAlgorithm::Rsa { bits: 2048 }, KeyAlgorithm::P384, KeyAlgorithm::Sm2];

/// An agent serving one soft token "Alice" with keys of `algorithms`.
pub fn agent_with_token(algorithms: &[KeyAlgorithm], extra: &[&str]) -> (TestAgent, TestToken) {
    let dir = tempfile::tempdir().expect("temp dir");
    let token = soft_token(&dir.path().join("soft"), "Alice", algorithms);
    let agent = TestAgent::start_in(dir, extra);
    crate::soft::wait_tokens(&agent, 1);
    (agent, token)
}

/// A client command with the agent's environment (so the module finds the agent's socket) and
/// the module's debug log on.
pub fn client(agent: &TestAgent, program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in agent.envs() {
        cmd.env(k, v);
    }
    cmd.env("UKEY_PKCS11_DEBUG", "1");
    cmd
}

/// The module's PIN modes (`UKEY_PKCS11_PIN`): the program logs in, or the agent asks at each
/// signature. Tests of what both modes share run once per mode.
pub const PIN_MODES: [&str; 2] = ["login", "agent"];

/// [`client`] with the module in a PIN mode.
pub fn client_in(agent: &TestAgent, program: &str, pin_mode: &str) -> Command {
    let mut cmd = client(agent, program);
    cmd.env("UKEY_PKCS11_PIN", pin_mode);
    cmd
}

/// Runs a command and returns its output, failing with both streams when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `bytes` to a file in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

/// A PEM certificate from DER.
pub fn cert_pem(der: &[u8]) -> String {
    let b64 = ukey_api::crypto::encoding::base64_encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The pinentry script line that answers with the test PIN.
pub fn pin_line() -> String {
    format!("pin {SENTINEL_PIN}")
}

/// An OpenSSL configuration that loads libp11's engine with this module.
pub fn openssl_conf(dir: &Path) -> PathBuf {
    let engine = ["/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so", "/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| panic!("OpenSSL's pkcs11 engine is missing: install libengine-pkcs11-openssl"));
    let conf = format!(
        "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n[engine_section]\npkcs11 = pkcs11_section\n\
         [pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {engine}\nMODULE_PATH = {}\ninit = 0\n",
        module_path().display()
    );
    write_file(dir, "openssl.cnf", conf.as_bytes())
}
