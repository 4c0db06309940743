//! A PKCS#11 module that never answers must not hang ukey, and OpenSC's p11-kit registration is
//! left out beside ukey's own PC/SC driver.
//!
//! The hung module is the one test double here (tests/hung_module): it stands for a hung vendor
//! module — OpenSC 0.23's `opensc-pkcs11.so` intermittently deadlocks in its own `C_Initialize`
//! on this rig (see /work/notes/issue-3.md) — and is loaded beside the real SoftHSM2, whose
//! tokens must keep working. Each `ukey` run is bounded by a deadline, so without the fix the
//! test fails (instead of hanging the suite).

mod hung_module;
mod pkcs11_rig;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pkcs11_rig::{PIN, Rig, SOFTHSM};
use serde_json::Value;

/// OpenSC's module, as Debian installs it.
const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

/// Longest one `ukey` run may take here; far above the module deadline the tests configure.
const RUN_DEADLINE: Duration = Duration::from_secs(90);

/// Output of a bounded `ukey` run.
struct Bounded {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Bounded {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

/// Runs `ukey --config <rig config> ARGS` (as the rig does) but gives up after [`RUN_DEADLINE`]:
/// a ukey that hangs on the module fails the test instead of stalling it.
fn ukey_bounded(rig: &Rig, args: &[&str], env: &[(&str, &str)]) -> Bounded {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ukey"));
    cmd.env("SOFTHSM2_CONF", &rig.softhsm_conf)
        .env("HOME", rig.path("home"))
        .env("XDG_CONFIG_HOME", rig.path("xdg-config"))
        .env("XDG_DATA_HOME", rig.path("xdg-data"))
        .env("XDG_STATE_HOME", rig.path("xdg-state"))
        .env_remove("UKEY_PKCS11_MODULES")
        .env_remove("UKEY_CONFIG")
        .env_remove("UKEY_DRIVERS")
        .env_remove("UKEY_PIN")
        .arg("--config")
        .arg(&rig.config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("running ukey");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(RUN_DEADLINE) {
        Ok(Ok(out)) => Bounded {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Ok(Err(e)) => panic!("waiting for ukey {args:?}: {e}"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("ukey {args:?} hung for {RUN_DEADLINE:?} on a module that never answers");
        }
    }
}

fn write_config(rig: &Rig, drivers: &str, p11kit: bool, timeout_ms: u64, modules: &[&str]) {
    let mut text = format!(
        "drivers = {drivers}\n\n[soft]\nenabled = false\n\n[pkcs11]\np11kit = {p11kit}\ninit_timeout_ms = {timeout_ms}\n"
    );
    for m in modules {
        text.push_str(&format!("\n[[pkcs11.modules]]\npath = \"{m}\"\n"));
    }
    std::fs::write(&rig.config, text).expect("writing the config");
}

#[test]
fn a_module_that_never_answers_is_reported_and_the_others_keep_working() {
    let hung = hung_module::path();
    let hung = hung.to_str().expect("a UTF-8 path");
    let rig = Rig::new();
    rig.init_token("BesideHung");
    write_config(&rig, "[\"pkcs11\"]", false, 1500, &[SOFTHSM, hung]);

    let modules = ukey_bounded(&rig, &["modules", "--json"], &[]);
    assert_eq!(modules.code, Some(0), "{}", modules.stderr);
    let json = modules.json();
    let list = json["modules"].as_array().expect("modules");
    let softhsm = list.iter().find(|m| m["path"] == SOFTHSM).expect("SoftHSM listed");
    assert_eq!(softhsm["loaded"], true, "{json}");
    let broken = list.iter().find(|m| m["path"] == hung).expect("the hung module listed");
    assert_eq!(broken["loaded"], false, "{json}");
    let message = broken["message"].as_str().unwrap_or_default();
    assert!(message.contains("did not answer C_Initialize within 1.5 s"), "{message}");
    assert!(message.contains("init_timeout_ms") && message.contains("[pkcs11]"), "says what to do: {message}");

    let human = ukey_bounded(&rig, &["modules"], &[]);
    assert!(human.stdout.contains("did not answer C_Initialize"), "{}", human.stdout);

    // The registry: SoftHSM's token is listed and usable; the hung module is a reported problem.
    let tokens = ukey_bounded(&rig, &["tokens", "--json"], &[]);
    let tokens = tokens.json();
    assert!(tokens["tokens"].as_array().expect("tokens").iter().any(|t| t["label"] == "BesideHung"), "{tokens}");
    let problems = tokens["problems"].to_string();
    assert!(problems.contains("did not answer C_Initialize"), "{tokens}");
    let keygen = ukey_bounded(
        &rig,
        &["keygen", "--token", "BesideHung", "--alg", "p256", "--label", "still-works"],
        &[("UKEY_PIN", PIN)],
    );
    assert_eq!(keygen.code, Some(0), "{}", keygen.stderr);

    // ukey doctor: a failure about that module with the same explanation and a fix.
    let doctor = ukey_bounded(&rig, &["doctor", "--json", "--check", "pkcs11"], &[]);
    let findings = doctor.json()["findings"].as_array().expect("findings").clone();
    let about = findings.iter().find(|f| f["subject"] == hung).unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(about["status"], "fail", "{about}");
    assert!(about["message"].as_str().unwrap_or_default().contains("did not answer C_Initialize"), "{about}");
    assert!(about["fix"].is_string(), "{about}");
    let ok = findings.iter().find(|f| f["subject"] == SOFTHSM).expect("a SoftHSM finding");
    assert_eq!(ok["status"], "ok", "{ok}");
}

#[test]
fn opensc_registered_with_p11kit_is_skipped_beside_the_native_pcsc_driver_unless_configured() {
    assert!(std::path::Path::new(OPENSC).exists(), "{OPENSC} is missing: install the Debian package `opensc-pkcs11`");
    let rig = Rig::new();
    // A user-level p11-kit registration (the same one Debian's opensc package installs system-wide).
    let registrations = rig.path("xdg-config/pkcs11/modules");
    std::fs::create_dir_all(&registrations).expect("p11-kit directory");
    std::fs::write(registrations.join("opensc-pkcs11.module"), "module: opensc-pkcs11.so\n").expect("registration");
    let opensc = |json: &Value| -> Option<Value> {
        json["modules"].as_array()?.iter().find(|m| m["name"] == "opensc-pkcs11").cloned()
    };

    // ukey's PC/SC driver runs: skipped, with the reason.
    write_config(&rig, "[\"pkcs11\", \"pcsc\"]", true, 3000, &[SOFTHSM]);
    let ran = ukey_bounded(&rig, &["modules", "--json"], &[]);
    let json = ran.json();
    let skipped = opensc(&json).unwrap_or_else(|| panic!("OpenSC not listed: {json}"));
    assert_eq!(skipped["skipped"], true, "{skipped}");
    assert_eq!(skipped["loaded"], false, "{skipped}");
    assert!(skipped["message"].as_str().unwrap_or_default().contains("appear twice"), "{skipped}");
    let human = ukey_bounded(&rig, &["modules"], &[]);
    assert!(human.stdout.lines().any(|l| l.contains("opensc-pkcs11") && l.contains("skipped")), "{}", human.stdout);
    // Skipping is not a problem for the registry.
    let tokens = ukey_bounded(&rig, &["tokens", "--json"], &[]).json();
    assert!(!tokens["problems"].to_string().contains("opensc"), "{tokens}");

    // Without ukey's PC/SC driver, OpenSC's module is used as registered.
    write_config(&rig, "[\"pkcs11\"]", true, 3000, &[SOFTHSM]);
    let json = ukey_bounded(&rig, &["modules", "--json"], &[]).json();
    let used = opensc(&json).unwrap_or_else(|| panic!("OpenSC not listed: {json}"));
    assert!(used.get("skipped").is_none(), "{used}");

    // Named in the config, it is used even beside the PC/SC driver.
    write_config(&rig, "[\"pkcs11\", \"pcsc\"]", true, 3000, &[SOFTHSM, OPENSC]);
    let json = ukey_bounded(&rig, &["modules", "--json"], &[]).json();
    let named = opensc(&json).unwrap_or_else(|| panic!("OpenSC not listed: {json}"));
    assert!(named.get("skipped").is_none(), "{named}");
    assert_eq!(named["source"], "config", "{named}");
}
