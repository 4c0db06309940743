//! `libukey_pkcs11.so` keeps the single-holder rule: a program running as another local account
//! gets no usable slot from the holder's agent, even when the agent's socket was opened up by
//! mistake (the agent checks the peer's uid with SO_PEERCRED), and the refusal is on record.

mod agent_support;
mod p11module_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use p11module_support::*;
use ukey_api::KeyAlgorithm;

/// Creates the second local account (idempotent, tolerant of parallel test binaries).
fn other_user() -> (u32, String) {
    let name = "ukeytest";
    let id = |n: &str| Command::new("id").args(["-u", n]).output().ok().filter(|o| o.status.success());
    if id(name).is_none() {
        let _ = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
            .status()
            .expect("useradd (package passwd) is needed to create the test user");
    }
    let out = id(name).expect("the test user could not be created");
    (String::from_utf8_lossy(&out.stdout).trim().parse().expect("uid"), name.to_string())
}

#[test]
fn a_program_running_as_another_account_gets_no_usable_slot() {
    assert!(
        rustix::process::getuid().is_root(),
        "this test needs root: it creates a second account and runs pkcs11-tool as it (run the suite as root, as CI does)"
    );
    require("pkcs11-tool", "opensc");
    require("setpriv", "util-linux");
    let (other_uid, other) = other_user();
    let (agent, token) = agent_with_token(&[KeyAlgorithm::P256], &[]);

    // The holder's own program sees the carrier.
    let mine = stdout(&run_ok(client(&agent, "pkcs11-tool").arg("--module").arg(module_path()).arg("-L")));
    assert!(mine.contains(&token.serial), "{mine}");

    // The worst case: the runtime directory and the socket opened to everybody by mistake.
    let runtime = agent.dir.path().join("run");
    for dir in [agent.dir.path().to_path_buf(), runtime.clone()] {
        agent_support::open_dir(&dir);
    }
    std::fs::set_permissions(runtime.join("ukey"), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&agent.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    // A copy of the module the other account can load.
    let lib_dir = tempfile::tempdir().unwrap();
    agent_support::open_dir(lib_dir.path());
    let lib = lib_dir.path().join("libukey_pkcs11.so");
    std::fs::copy(module_path(), &lib).unwrap();

    for mode in PIN_MODES {
        let out = Command::new("setpriv")
            .args([&format!("--reuid={other}"), &format!("--regid={other}"), "--clear-groups", "--"])
            .arg("pkcs11-tool")
            .arg("--module")
            .arg(&lib)
            .arg("-L")
            .env_clear()
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", lib_dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("UKEY_PKCS11_PIN", mode)
            .output()
            .expect("run setpriv");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("No slots.") && !stdout(&out).contains(&token.serial),
            "{mode}: no slot for another account: {err}"
        );
        assert!(err.contains("belongs to uid 0"), "{mode}: the module says why: {err}");
        agent.wait_log(&format!("refused a Unix-socket client running as uid {other_uid}"));
    }
}
