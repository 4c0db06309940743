//! A second OS account runs the real `ukey` binary directly (no agent of its own is running) on a
//! carrier registered to another holder — a lent key. The soft token here is the holder's, and
//! its store is opened to the other account, as handing the key over would: the custody record
//! still names the holder, so the use is refused with the holder's name, before the carrier is
//! used, and the refusal is on the other account's audit record.
//!
//! Needs root (the second account, `nobody`, runs through setpriv), as CI runs it.

mod custody_support;

use std::path::Path;
use std::process::{Command, Output};

use custody_support::*;
use ukey::audit::Event;
use ukey::audit::read::{Filter, read_dir};
use ukey::policy::record::Right;

const POLICY: &str = "mode = \"deny\"\ndevelopment = true\nunit = \"Finance Bureau\"\n";

fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `ukey ARGS` as the account `uid` (through setpriv unless it is root), on this machine's
/// system directory and soft-token store, with its own runtime directory (no agent there) and
/// audit log.
fn ukey_as(m: &Machine, uid: u32, args: &[&str], input: &Path) -> Output {
    let home = m.dir.path().join(format!("home-{uid}"));
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
    let mut cmd = if uid == 0 {
        Command::new(env!("CARGO_BIN_EXE_ukey"))
    } else {
        let mut c = Command::new("setpriv");
        c.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into(), "--".into()])
            .arg(env!("CARGO_BIN_EXE_ukey"));
        c
    };
    cmd.args(args)
        .arg("--in")
        .arg(input)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("UKEY_AUDIT_DIR", home.join("audit"))
        .env("UKEY_SYSTEM_DIR", &m.paths.root)
        .env("UKEY_SOFT_DIR", m.soft.dir())
        .env("UKEY_DRIVERS", "soft")
        .env("UKEY_PIN", USER_PIN);
    cmd.output().expect("run ukey (setpriv is in util-linux)")
}

#[test]
fn another_account_using_the_holders_carrier_through_the_cli_is_refused_naming_the_holder() {
    require_root("running the CLI as a second account");
    let m = Machine::new();
    m.policy(POLICY);
    let token = m.token("zhang");
    let serial = token.carrier.info().serial.clone();
    m.bind(&token, &["root"], &[Right::Sign]);
    let input = m.dir.path().join("contract.txt");
    std::fs::write(&input, b"contract 7").unwrap();
    let sign = ["sign", "--token", serial.as_str(), "--key", "sign"];

    // The holder's account signs.
    let own = ukey_as(&m, 0, &sign, &input);
    assert!(own.status.success(), "the holder signs: {}", text(&own));
    assert!(!own.stdout.is_empty(), "a signature is printed: {}", text(&own));

    // The key handed over: the other account can reach the holder's token store (opened after the
    // holder's use, which rewrites the token file with its private mode).
    let chmod = Command::new("chmod").args(["-R", "a+rwX"]).arg(m.dir.path()).status().unwrap();
    assert!(chmod.success());

    // The other account is refused, naming the holder and itself, with exit code 6 and nothing
    // signed.
    let (uid, login) = nobody();
    let other = ukey_as(&m, uid, &sign, &input);
    assert_eq!(other.status.code(), Some(6), "{}", text(&other));
    assert!(
        text(&other)
            .contains(&format!("this key is registered to Zhang San (Finance); account {login} may not use it")),
        "the refusal names the holder and the account: {}",
        text(&other)
    );
    assert!(other.stdout.is_empty(), "nothing was signed: {}", text(&other));

    // The refusal is on the other account's own audit record.
    let audit = m.dir.path().join(format!("home-{uid}/audit"));
    let records: Vec<_> =
        read_dir(&audit, &Filter::default(), None).expect("nobody's audit log").into_iter().map(|r| r.record).collect();
    let refusal = last_of(&records, Event::Refusal).unwrap_or_else(|| panic!("no refusal recorded: {records:?}"));
    assert_eq!(refusal.uid, Some(uid));
    assert!(refusal.reason.as_deref().is_some_and(|r| r.contains("Zhang San (Finance)")), "{refusal:?}");
    assert_eq!(refusal.serial.as_deref(), Some(serial.as_str()));
    assert!(
        records.iter().all(|r| r.event != Event::Use && r.event != Event::Intent),
        "the carrier was not touched for the other account: {records:?}"
    );
}
