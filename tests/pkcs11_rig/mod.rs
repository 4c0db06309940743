//! Rig for the CLI-level PKCS#11 tests: a private SoftHSM (its own `SOFTHSM2_CONF` and token
//! directory), a ukey config file that loads only SoftHSM, and helpers to run `ukey`,
//! `pkcs11-tool`, `p11tool` and `openssl` against it. Every command is a separate process with
//! its own environment, so tests run in parallel safely. A missing tool is a failure that names
//! the package to install.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// SoftHSM2's module, as Debian installs it.
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// User PIN of the test tokens.
pub const PIN: &str = "123456";
/// SO PIN of the test tokens.
pub const SO_PIN: &str = "12345678";

/// Fails with an install hint when a tool is missing.
pub fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` is missing: install the Debian package `{package}` (scripts/apt-packages.txt lists it)");
}

/// One test's SoftHSM and ukey configuration.
pub struct Rig {
    dir: tempfile::TempDir,
    /// `softhsm2.conf`.
    pub softhsm_conf: PathBuf,
    /// ukey's `config.toml`.
    pub config: PathBuf,
}

/// The text a command printed on stdout and stderr, and how it ended.
pub struct Ran {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Raw standard output.
    pub bytes: Vec<u8>,
}

impl Ran {
    fn of(out: Output) -> Self {
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            bytes: out.stdout,
        }
    }

    /// Insists on exit code 0.
    pub fn ok(self, what: &str) -> Self {
        assert_eq!(self.code, Some(0), "{what} failed:\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// The JSON document on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

impl Rig {
    /// A fresh SoftHSM with no tokens, and a ukey config that loads only SoftHSM.
    pub fn new() -> Self {
        assert!(Path::new(SOFTHSM).exists(), "{SOFTHSM} is missing: install the Debian package `softhsm2`");
        require("softhsm2-util", "softhsm2");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let softhsm_conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &softhsm_conf,
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
        )
        .unwrap();
        let config = dir.path().join("config.toml");
        let rig = Rig { dir, softhsm_conf, config };
        rig.write_config("");
        rig
    }

    /// Rewrites ukey's config: SoftHSM only, no p11-kit, no soft tokens, plus `extra` TOML
    /// inside the SoftHSM module's table (e.g. `keep_login = true`).
    pub fn write_config(&self, extra: &str) {
        std::fs::write(
            &self.config,
            format!(
                "drivers = [\"pkcs11\"]\n\n[soft]\nenabled = false\n\n[pkcs11]\np11kit = false\n\n[[pkcs11.modules]]\npath = \"{SOFTHSM}\"\n{extra}\n"
            ),
        )
        .unwrap();
    }

    /// A path in the rig's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SOFTHSM2_CONF", &self.softhsm_conf)
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("XDG_DATA_HOME", self.path("xdg-data"))
            .env("XDG_STATE_HOME", self.path("xdg-state"))
            .env_remove("UKEY_PIN")
            .env_remove("UKEY_SO_PIN")
            .env_remove("UKEY_NEW_PIN")
            .env_remove("UKEY_PKCS11_MODULES")
            .env_remove("UKEY_CONFIG");
        cmd
    }

    /// Runs `ukey --config <rig config> ARGS` with the given environment.
    pub fn ukey(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_ukey"));
        cmd.arg("--config").arg(&self.config).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ran::of(cmd.output().expect("running ukey"))
    }

    /// Runs any program with the rig's SoftHSM configuration.
    pub fn run(&self, program: &str, args: &[&str]) -> Ran {
        Ran::of(self.command(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}")))
    }

    /// `pkcs11-tool --module SoftHSM ARGS`.
    pub fn pkcs11_tool(&self, args: &[&str]) -> Ran {
        require("pkcs11-tool", "opensc");
        let mut all = vec!["--module", SOFTHSM];
        all.extend_from_slice(args);
        self.run("pkcs11-tool", &all)
    }

    /// Makes a token and returns its serial.
    pub fn init_token(&self, label: &str) -> String {
        self.run("softhsm2-util", &["--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN])
            .ok("softhsm2-util --init-token");
        let text = self.run("softhsm2-util", &["--show-slots"]).ok("softhsm2-util --show-slots").stdout;
        let mut serial = None;
        for line in text.lines().map(str::trim) {
            if let Some(s) = line.strip_prefix("Serial number:") {
                serial = Some(s.trim().to_string());
            }
            if line.strip_prefix("Label:").is_some_and(|l| l.trim() == label) {
                return serial.expect("a serial before the label");
            }
        }
        panic!("no token labelled {label}:\n{text}");
    }

    /// A certificate (DER) for `spki_pem`, issued by a throwaway OpenSSL CA.
    pub fn certificate_for(&self, spki_pem: &str, cn: &str) -> Vec<u8> {
        require("openssl", "openssl");
        let ca = self.path("ca.key");
        if !ca.exists() {
            self.run(
                "openssl",
                &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ca.to_str().unwrap()],
            )
            .ok("openssl genpkey");
        }
        let public = self.path(&format!("{cn}.pub.pem"));
        std::fs::write(&public, spki_pem).unwrap();
        let out = self.path(&format!("{cn}.der"));
        self.run(
            "openssl",
            &[
                "x509",
                "-new",
                "-force_pubkey",
                public.to_str().unwrap(),
                "-subj",
                &format!("/CN={cn}"),
                "-key",
                ca.to_str().unwrap(),
                "-days",
                "30",
                "-outform",
                "DER",
                "-out",
                out.to_str().unwrap(),
            ],
        )
        .ok("openssl x509 -new");
        std::fs::read(out).unwrap()
    }
}

/// SHA-256 of a message.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}
