//! Tells the tests whether this machine's kernel offers `/dev/uhid`. The real-device test
//! (tests/uhid.rs) needs it; where it is missing that test is reported as ignored ("not run"),
//! never as passed, and it runs by itself on a machine that has uhid.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(uhid_missing)");
    println!("cargo::rerun-if-changed=build.rs");
    // Watching `/dev/uhid` itself would rebuild this crate on every cargo run where it is missing
    // (a missing path always counts as changed); `/dev` changes when device nodes come and go, so
    // a machine that loads uhid later picks it up on the next build.
    println!("cargo::rerun-if-changed=/dev");
    if !Path::new("/dev/uhid").exists() {
        println!("cargo::rustc-cfg=uhid_missing");
    }
}
