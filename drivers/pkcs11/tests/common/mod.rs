//! The SoftHSM2 test rig: every test runs in its own child process with its own
//! `SOFTHSM2_CONF` and token directory.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`, and a library is initialised once per
//! process; so tests that each want their own tokens cannot share a process. [`isolated`]
//! re-runs the current test binary for just this test, with the environment set, and fails the
//! parent when the child fails. Missing tools are a failure with the package to install.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use ukey_api::{Carrier, Credential, Pin};
use ukey_pkcs11::{Pkcs11Carrier, Pkcs11Config, Pkcs11Driver};

/// SoftHSM2's module, as Debian installs it.
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Default user PIN of the test tokens.
pub const PIN: &str = "123456";
/// Default SO PIN of the test tokens.
pub const SO_PIN: &str = "12345678";

const CHILD_ENV: &str = "UKEY_P11_TEST_CHILD";
const DIR_ENV: &str = "UKEY_P11_TEST_DIR";

/// A test's private SoftHSM: its directory and configuration file.
#[derive(Debug, Clone)]
pub struct Rig {
    /// The test's temporary directory.
    pub dir: PathBuf,
    /// Its `softhsm2.conf`.
    pub conf: PathBuf,
}

/// Fails with an install hint when a tool the tests need is missing.
pub fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` is missing: install the Debian package `{package}` (scripts/apt-packages.txt lists it)");
}

/// Fails with an install hint when SoftHSM2 is missing.
pub fn require_softhsm() {
    assert!(Path::new(SOFTHSM).exists(), "{SOFTHSM} is missing: install the Debian package `softhsm2`");
    require("softhsm2-util", "softhsm2");
}

/// Runs `body` in a child process with a fresh SoftHSM configuration; `test_name` must be the
/// calling test function's name (the child is started with `--exact test_name`).
pub fn isolated(test_name: &str, body: impl FnOnce(&Rig)) {
    isolated_env(test_name, &[], body)
}

/// [`isolated`] with extra environment variables for the child.
pub fn isolated_env(test_name: &str, env: &[(&str, &str)], body: impl FnOnce(&Rig)) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(test_name) {
        let dir = PathBuf::from(std::env::var(DIR_ENV).expect("the parent sets the test directory"));
        let rig = Rig { conf: dir.join("softhsm2.conf"), dir };
        body(&rig);
        return;
    }
    require_softhsm();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let tokens = tmp.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("token directory");
    let conf = tmp.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )
    .expect("softhsm2.conf");
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe);
    child
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_name)
        .env(DIR_ENV, tmp.path())
        .env("SOFTHSM2_CONF", &conf)
        .env_remove(ukey_pkcs11::MODULES_ENV);
    for (name, value) in env {
        child.env(name, value);
    }
    let out = child.output().expect("re-running the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "isolated test {test_name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

impl Rig {
    /// Runs a command with this rig's SoftHSM configuration and returns its output.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"))
    }

    /// Runs a command and insists it succeeds; returns stdout.
    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes a token with `softhsm2-util` and returns its serial.
    pub fn init_token(&self, label: &str) -> String {
        self.ok("softhsm2-util", &["--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN]);
        self.serial_of(label)
    }

    /// The serial of the token with `label`, as `softhsm2-util --show-slots` prints it.
    pub fn serial_of(&self, label: &str) -> String {
        let text = self.ok("softhsm2-util", &["--show-slots"]);
        let mut serial = None;
        for line in text.lines() {
            let line = line.trim();
            if let Some(s) = line.strip_prefix("Serial number:") {
                serial = Some(s.trim().to_string());
            }
            if let Some(l) = line.strip_prefix("Label:")
                && l.trim() == label
            {
                return serial.expect("a serial before the label");
            }
        }
        panic!("no token labelled {label}:\n{text}");
    }

    /// `pkcs11-tool` on SoftHSM with extra arguments.
    pub fn pkcs11_tool(&self, args: &[&str]) -> Output {
        require("pkcs11-tool", "opensc");
        let mut all = vec!["--module", SOFTHSM];
        all.extend_from_slice(args);
        self.run("pkcs11-tool", &all)
    }

    /// `pkcs11-tool` that must succeed; returns stdout and stderr together.
    pub fn pkcs11_tool_ok(&self, args: &[&str]) -> String {
        let out = self.pkcs11_tool(args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "pkcs11-tool {args:?} failed:\n{text}");
        text
    }

    /// A file in the rig's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A driver that loads only SoftHSM (in the child process, with the rig's configuration).
pub fn driver() -> Pkcs11Driver {
    Pkcs11Driver::new(&Pkcs11Config::only([SOFTHSM]))
}

/// The carrier whose label is `label`.
pub fn carrier(driver: &Pkcs11Driver, label: &str) -> Arc<Pkcs11Carrier> {
    driver
        .pkcs11_carriers()
        .expect("carriers")
        .into_iter()
        .find(|c| c.info().label == label)
        .unwrap_or_else(|| panic!("no carrier labelled {label}"))
}

/// The user PIN as a credential.
pub fn user() -> Credential {
    Credential::Pin(Pin::new(PIN).unwrap())
}

/// The SO PIN as a credential.
pub fn so() -> Credential {
    Credential::Pin(Pin::new(SO_PIN).unwrap())
}

/// A credential with any PIN.
pub fn pin(value: &str) -> Credential {
    Credential::Pin(Pin::new(value).unwrap())
}

/// PEM text of a DER SubjectPublicKeyInfo.
pub fn spki_pem(der: &[u8]) -> String {
    let b64 = ukey_api::crypto::encoding::base64_encode(der);
    let body: Vec<String> = b64.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", body.join("\n"))
}

/// DER `SEQUENCE { r, s }` from a raw `r ‖ s` signature, for OpenSSL.
pub fn ec_der_signature(raw: &[u8]) -> Vec<u8> {
    use der::Encode;
    #[derive(der::Sequence)]
    struct EcSig<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let trim = |b: &[u8]| -> Vec<u8> { b.iter().skip_while(|x| **x == 0).copied().collect() };
    let (r, s) = (trim(r), trim(s));
    EcSig { r: der::asn1::UintRef::new(&r).unwrap(), s: der::asn1::UintRef::new(&s).unwrap() }.to_der().unwrap()
}

/// Verifies a signature over `digest` with `openssl pkeyutl`, an independent implementation.
/// `mechanism` picks the padding for RSA; EC signatures are raw `r ‖ s` and converted to DER.
pub fn openssl_verify(rig: &Rig, spki: &[u8], mechanism: &ukey_api::Mechanism, digest: &[u8], signature: &[u8]) {
    use ukey_api::Mechanism;
    require("openssl", "openssl");
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let tag = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let pem = rig.path(&format!("pub-{tag}.pem"));
    let dgst = rig.path(&format!("dgst-{tag}.bin"));
    let sig = rig.path(&format!("sig-{tag}.bin"));
    std::fs::write(&pem, spki_pem(spki)).unwrap();
    std::fs::write(&dgst, digest).unwrap();
    let mut args = vec!["pkeyutl", "-verify", "-pubin", "-inkey", pem.to_str().unwrap()];
    args.extend(["-in", dgst.to_str().unwrap(), "-sigfile", sig.to_str().unwrap()]);
    match mechanism {
        Mechanism::EcdsaSha256 | Mechanism::EcdsaSha384 => std::fs::write(&sig, ec_der_signature(signature)).unwrap(),
        Mechanism::RsaPkcs1Sha256 => {
            std::fs::write(&sig, signature).unwrap();
            args.extend(["-pkeyopt", "digest:sha256"]);
        }
        Mechanism::RsaPkcs1 { hash } => {
            std::fs::write(&sig, signature).unwrap();
            let digest = match hash {
                ukey_api::HashAlg::Sha1 => "digest:sha1",
                ukey_api::HashAlg::Sha224 => "digest:sha224",
                ukey_api::HashAlg::Sha256 => "digest:sha256",
                ukey_api::HashAlg::Sha384 => "digest:sha384",
                ukey_api::HashAlg::Sha512 => "digest:sha512",
                ukey_api::HashAlg::Sm3 => panic!("RSA with SM3 does not exist"),
            };
            args.extend(["-pkeyopt", digest]);
        }
        Mechanism::RsaPssSha256 => {
            std::fs::write(&sig, signature).unwrap();
            args.extend(["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32"]);
            args.extend(["-pkeyopt", "digest:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"]);
        }
        Mechanism::Sm2Sm3 { .. } => panic!("SM2 is not verified with pkeyutl here"),
    }
    let out = rig.run("openssl", &args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("Signature Verified Successfully"), "openssl says: {text}");
}

/// SHA-256 of a message.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

/// SHA-384 of a message.
pub fn sha384(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha384::digest(data).to_vec()
}
