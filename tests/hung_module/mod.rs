//! The hung PKCS#11 module fixture (`hung_pkcs11.rs`): built once per source version into the
//! target's temporary directory with `rustc --crate-type cdylib`, so no test depends on another
//! crate's build artefacts. It stands for a vendor module whose `C_Initialize` never returns.

#![allow(dead_code)]

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const SOURCE: &str = include_str!("hung_pkcs11.rs");

/// The path of the built module (built on first use).
pub fn path() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    SOURCE.hash(&mut hasher);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hung-pkcs11");
    std::fs::create_dir_all(&dir).expect("creating the fixture directory");
    let out = dir.join(format!("libukey-hung-pkcs11-{:016x}.so", hasher.finish()));
    if out.exists() {
        return out;
    }
    // Build under a unique name, then rename: test binaries running in parallel never see a
    // half-written library.
    let partial = dir.join(format!("partial-{}", std::process::id()));
    std::fs::create_dir_all(&partial).expect("creating the fixture build directory");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hung_module/hung_pkcs11.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let built = partial.join("libhung.so");
    let status = Command::new(&rustc)
        .args(["--edition", "2024", "--crate-type", "cdylib", "--crate-name", "hung", "-C", "opt-level=0", "-o"])
        .arg(&built)
        .arg(source)
        .status()
        .unwrap_or_else(|e| panic!("running {rustc:?} to build the hung-module fixture: {e}"));
    assert!(status.success(), "rustc could not build the hung-module fixture {source}");
    std::fs::rename(&built, &out).expect("moving the fixture into place");
    let _ = std::fs::remove_dir_all(&partial);
    out
}
