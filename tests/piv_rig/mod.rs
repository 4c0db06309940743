//! Rig for the CLI-level PIV tests: a vpcd reader leased through the virtual-piv harness (pcscd
//! started when needed, a cross-process lock per reader), a virtual PIV card inserted in it, and
//! helpers that run the real `ukey` binary (PC/SC driver only, limited to the leased reader),
//! OpenSC's tools and `openssl` against that one card. A missing tool is a failure that names the
//! package to install.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ukey_vpiv::harness::{InsertedCard, ReaderLease, VPCD_READERS};
use ukey_vpiv::{CardConfig, VirtualPiv};

/// The virtual card's factory PIN.
pub const PIN: &str = "123456";
/// The virtual card's factory PUK.
pub const PUK: &str = "12345678";
/// Longest wait for a free vpcd reader: other test binaries may hold both.
pub const LEASE_TIMEOUT: Duration = Duration::from_secs(600);

/// Fails with an install hint when a tool is missing.
pub fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` is missing: install the Debian package `{package}` (scripts/apt-packages.txt lists it)");
}

/// Leases a vpcd reader (starting pcscd when needed).
pub fn lease() -> ReaderLease {
    ReaderLease::acquire_any(LEASE_TIMEOUT).unwrap_or_else(|e| {
        panic!("no vpcd reader: {e}; install pcscd and vsmartcard-vpcd (scripts/apt-packages.txt lists them)")
    })
}

/// Inserts a factory-fresh virtual PIV card in the leased reader.
pub fn insert(lease: &ReaderLease) -> InsertedCard<'_> {
    let card = VirtualPiv::new(CardConfig::default()).expect("a virtual PIV card");
    lease.insert(card).unwrap_or_else(|e| panic!("inserting the virtual card in {}: {e}", lease.reader_name()))
}

/// What a command printed and how it ended.
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
    #[track_caller]
    pub fn ok(self, what: &str) -> Self {
        assert_eq!(self.code, Some(0), "{what} failed:\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Insists on a given exit code.
    #[track_caller]
    pub fn code(self, code: i32, what: &str) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit code {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The JSON document on stdout.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }

    /// The JSON error document on stderr.
    #[track_caller]
    pub fn json_error(&self) -> serde_json::Value {
        serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not JSON ({e}):\n{}", self.stderr))
    }
}

/// Longest any one command of a test may run. Generous for a loaded 2-core CI machine; a command
/// past it has hung (OpenSC 0.23 can deadlock in its own `C_Initialize`, see
/// [`Rig::opensc_conf`]) and is killed, so the test fails with the command named instead of
/// stalling the whole run.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(180);

/// Runs `cmd` to completion, collecting its output, within [`COMMAND_DEADLINE`].
#[track_caller]
fn output_within(mut cmd: Command, program: &str) -> Output {
    let child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("running {program}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_DEADLINE) {
        Ok(out) => {
            let _ = waiter.join();
            out.unwrap_or_else(|e| panic!("running {program}: {e}"))
        }
        Err(_) => {
            if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            let _ = waiter.join();
            panic!("{program} did not finish within {COMMAND_DEADLINE:?} and was killed: it hung");
        }
    }
}

/// OpenSC's PKCS#11 module on Debian/Ubuntu (amd64 and arm64 multiarch paths).
pub fn opensc_module() -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/opensc-pkcs11.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("opensc-pkcs11.so not found: install the Debian package `opensc`"))
}

/// One test's private directory and the reader its card sits in.
pub struct Rig {
    dir: tempfile::TempDir,
    reader: String,
}

impl Rig {
    /// A rig for the card in `lease`'s reader.
    pub fn new(lease: &ReaderLease) -> Self {
        Rig { dir: tempfile::tempdir().expect("a temporary directory"), reader: lease.reader_name().to_string() }
    }

    /// A path in the rig's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The PC/SC name of the card's reader.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("XDG_DATA_HOME", self.path("xdg-data"))
            .env("XDG_STATE_HOME", self.path("xdg-state"))
            .env("UKEY_SOFT_DIR", self.path("soft"))
            // Only the leased reader: a card another test put in the other reader is not ours.
            .env("UKEY_PCSC_READERS", &self.reader)
            // OpenSC's file cache would let one card's objects leak into another test's listing.
            .env("OPENSC_CONF", self.opensc_conf())
            .env_remove("UKEY_PIN")
            .env_remove("UKEY_SO_PIN")
            .env_remove("UKEY_NEW_PIN")
            .env_remove("UKEY_PIV_MGMT_KEY")
            .env_remove("UKEY_PKCS11_MODULES")
            .env_remove("UKEY_CONFIG")
            .stdin(Stdio::null());
        cmd
    }

    /// OpenSC's configuration for this rig: no file cache, and only the leased reader.
    ///
    /// Ignoring the other readers is what keeps OpenSC from hanging. OpenSC binds every card in
    /// every reader inside `C_Initialize`; a card another test is pulling out or faulting in the
    /// other reader makes its PIV driver's `card_reader_lock_obtained` fail, and OpenSC 0.23's
    /// `sc_lock` then returns success with the lock count already dropped (OpenSC issue 2707,
    /// fixed in 0.24 by d449feeda). The following `sc_unlock` finds the count at zero and returns
    /// with the card mutex still held, so the next lock of that card blocks forever in
    /// `pthread_mutex_lock` (the `sc_pkcs15_bind` → `sc_unlock` stack seen in gdb). The mutexes
    /// are real whenever the caller passes `CK_C_INITIALIZE_ARGS` (with or without
    /// `CKF_OS_LOCKING_OK`); only a NULL argument, as `pkcs11-tool` passes, makes them no-ops.
    fn opensc_conf(&self) -> PathBuf {
        let path = self.path("opensc.conf");
        if !path.exists() {
            let others: Vec<String> =
                VPCD_READERS.iter().filter(|r| r.name != self.reader).map(|r| format!("\"{}\"", r.name)).collect();
            let ignored = if others.is_empty() {
                String::new()
            } else {
                format!("    ignored_readers = {};\n", others.join(", "))
            };
            std::fs::write(
                &path,
                format!(
                    "app default {{\n{ignored}    framework pkcs15 {{\n        use_file_caching = no;\n    }}\n}}\n"
                ),
            )
            .expect("write opensc.conf");
        }
        path
    }

    /// Runs `ukey --drivers pcsc ARGS` with the given environment.
    pub fn ukey(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_ukey"));
        cmd.arg("--drivers").arg("pcsc").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ran::of(output_within(cmd, "ukey"))
    }

    /// Runs `ukey --config FILE ARGS` (the drivers come from the config file).
    pub fn ukey_with_config(&self, config: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_ukey"));
        cmd.arg("--config").arg(config).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ran::of(output_within(cmd, "ukey"))
    }

    /// Runs any program in the rig's directory and environment.
    pub fn run(&self, program: &str, args: &[&str]) -> Ran {
        let mut cmd = self.command(program);
        cmd.args(args);
        let ran = Ran::of(output_within(cmd, program));
        eprintln!("$ {program} {}\n{}{}-> {:?}", args.join(" "), ran.stdout, ran.stderr, ran.code);
        ran
    }

    /// `openssl ARGS`.
    pub fn openssl(&self, args: &[&str]) -> Ran {
        require("openssl", "openssl");
        self.run("openssl", args)
    }

    /// `pkcs11-tool --module opensc-pkcs11.so --slot-description READER ARGS`.
    pub fn pkcs11_tool(&self, args: &[&str]) -> Ran {
        require("pkcs11-tool", "opensc");
        let module = opensc_module();
        let mut all = vec!["--module", module.to_str().expect("module path"), "--slot-description", &self.reader];
        all.extend_from_slice(args);
        self.run("pkcs11-tool", &all)
    }

    /// `piv-tool -r READER ARGS`.
    pub fn piv_tool(&self, args: &[&str]) -> Ran {
        require("piv-tool", "opensc");
        let mut all = vec!["-r", self.reader.as_str()];
        all.extend_from_slice(args);
        self.run("piv-tool", &all)
    }

    /// Issues a certificate for the CSR in `csr_pem_file`, signed by a throwaway CA; returns the
    /// PEM file.
    pub fn issue(&self, csr_pem_file: &Path, name: &str) -> PathBuf {
        let ca_key = self.path("ca.key");
        let ca_crt = self.path("ca.crt");
        if !ca_key.exists() {
            self.openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", s(&ca_key)]).ok("CA key");
            self.openssl(&[
                "req",
                "-new",
                "-x509",
                "-key",
                s(&ca_key),
                "-subj",
                "/CN=ukey PIV test CA",
                "-days",
                "30",
                "-out",
                s(&ca_crt),
            ])
            .ok("CA certificate");
        }
        let out = self.path(&format!("{name}.crt"));
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            s(csr_pem_file),
            "-CA",
            s(&ca_crt),
            "-CAkey",
            s(&ca_key),
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            s(&out),
        ])
        .ok("openssl x509 -req");
        out
    }
}

/// A path as text (temp paths are UTF-8 here).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
