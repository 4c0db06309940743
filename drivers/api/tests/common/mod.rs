//! Shared helpers for the OpenSSL cross-check tests: a private temp directory per test and a
//! runner for the `openssl` command line that fails loudly when it is missing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temp directory for one test, removed on drop.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch { dir: tempfile::Builder::new().prefix("ukey-api-test-").tempdir().expect("create a temp dir") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write a temp file");
        p
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }
}

/// Runs `openssl` with `args`; a missing binary fails the test with what to install.
pub fn openssl(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new("openssl");
    for a in args {
        cmd.arg(a);
    }
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run `openssl` ({e}): these tests cross-check against the OpenSSL command line; \
             install it with `apt-get install openssl` (listed in scripts/apt-packages.txt)"
        ),
    }
}

/// Runs `openssl` and asserts success, showing its output otherwise.
pub fn openssl_ok(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {:?} failed ({}):\nstdout: {}\nstderr: {}",
        args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes DER as PEM with `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).expect("PEM encode")
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
