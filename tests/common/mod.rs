//! Shared helpers of the CLI end-to-end tests: each test gets its own temporary home with its own
//! soft-token directory, and runs the real `ukey` binary and the real `openssl`.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Demo PINs used by the tests; the sentinel PIN must never be printed.
pub const USER_PIN: &str = "sentinel-4711";
/// SO PIN of the test tokens.
pub const SO_PIN: &str = "so-secret-9931";
/// The GM/T 0009 default SM2 id.
pub const SM2_ID: &str = "1234567812345678";

/// One isolated environment: a temp dir used as HOME, XDG dirs and soft-token store.
pub struct Env {
    /// Owns the directory.
    pub dir: tempfile::TempDir,
}

/// What a run produced.
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Stdout bytes.
    pub stdout: Vec<u8>,
    /// Stderr as text.
    pub stderr: String,
}

impl Run {
    /// Stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success\nstdout: {}\nstderr: {}", self.out(), self.stderr);
        self
    }

    /// Asserts a given exit code and returns self.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit code {code}\nstdout: {}\nstderr: {}", self.out(), self.stderr);
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.out()))
    }

    /// Stderr parsed as a JSON error.
    #[track_caller]
    pub fn json_error(&self) -> serde_json::Value {
        serde_json::from_str(self.stderr.trim()).unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", self.stderr))
    }

    /// Asserts the sentinel PINs appear nowhere in the output.
    #[track_caller]
    pub fn no_secrets(self) -> Self {
        for secret in [USER_PIN, SO_PIN, "new-pin-2468"] {
            assert!(!self.out().contains(secret), "a PIN leaked to stdout: {}", self.out());
            assert!(!self.stderr.contains(secret), "a PIN leaked to stderr: {}", self.stderr);
        }
        self
    }
}

impl Env {
    /// A fresh environment.
    pub fn new() -> Self {
        Env { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// A path inside the environment.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file inside the environment and returns its path.
    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).expect("write test file");
        p
    }

    /// The soft-token directory.
    pub fn soft_dir(&self) -> PathBuf {
        self.path("soft")
    }

    /// A `ukey` command run in this temp dir (relative paths land there), with a clean environment
    /// pointing at it and no PIN set.
    pub fn ukey(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ukey"));
        cmd.current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("UKEY_SOFT_DIR", self.soft_dir())
            // Only the soft token: readers and cards other tests plug in must not show up here.
            .env("UKEY_DRIVERS", "soft")
            .env_remove("UKEY_CONFIG")
            .env_remove("UKEY_PIN")
            .env_remove("UKEY_SO_PIN")
            .env_remove("UKEY_NEW_PIN")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `ukey ARGS` with extra environment variables and optional stdin.
    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
        let mut cmd = self.ukey();
        cmd.args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run_command(cmd, stdin)
    }

    /// Runs `ukey ARGS` with no PINs.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Runs `ukey ARGS` with the test user PIN in UKEY_PIN.
    pub fn run_pin(&self, args: &[&str]) -> Run {
        self.run_with(args, &[("UKEY_PIN", USER_PIN)], None)
    }

    /// Creates a soft token with the test PINs.
    pub fn create_token(&self, label: &str) {
        self.run_with(
            &["token", "init", "--soft", "--label", label],
            &[("UKEY_SO_PIN", SO_PIN), ("UKEY_NEW_PIN", USER_PIN)],
            None,
        )
        .ok()
        .no_secrets();
    }

    /// Generates a key and returns its `ukey keygen --json` report.
    pub fn keygen(&self, token: &str, alg: &str, label: &str) -> serde_json::Value {
        self.run_pin(&["--json", "keygen", "--token", token, "--alg", alg, "--label", label]).ok().no_secrets().json()
    }
}

/// Runs a prepared command, feeding stdin.
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(data).expect("write stdin");
    }
    let Output { status, stdout, stderr } = child.wait_with_output().expect("wait for child");
    Run { code: status.code().unwrap_or(-1), stdout, stderr: String::from_utf8_lossy(&stderr).into_owned() }
}

/// Runs `openssl ARGS` in `dir`; a missing openssl is a failure that says what to install.
#[track_caller]
pub fn openssl(dir: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run openssl ({e}): install it with `apt-get install openssl` (scripts/test-all does)"),
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs openssl and asserts success.
#[track_caller]
pub fn openssl_ok(dir: &Path, args: &[&str]) -> Run {
    let run = openssl(dir, args);
    assert_eq!(run.code, 0, "openssl {args:?} failed: {}{}", run.out(), run.stderr);
    run
}

/// `-sigopt`/`-vfyopt` value carrying the default SM2 id.
pub fn distid() -> String {
    format!("distid:{SM2_ID}")
}
