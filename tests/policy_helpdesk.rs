//! The helpdesk workflows and the compliance report through the real `ukey` binary, on real soft
//! tokens: bind, status, rebind, suspend, revoke, unblock, reset, custody tags; the role check;
//! the CLI's direct carrier path refused by the records written; the system audit log.

mod custody_support;

use std::process::{Command, Output};

use custody_support::*;
use ukey_api::crypto::{CertificateOptions, SoftwareKey, parse_name, pem::certificate_pem, self_signed};
use ukey_api::{Credential, KeyAlgorithm, PinRole};

const POLICY: &str =
    "mode = \"deny\"\ndevelopment = true\nhelpdesk_group = \"ukey-helpdesk\"\nunit = \"Finance Bureau\"\n";

/// Runs `ukey` on this machine's directories.
fn ukey(m: &Machine, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ukey"));
    cmd.args(args)
        .env("UKEY_SYSTEM_DIR", &m.paths.root)
        .env("UKEY_AUDIT_DIR", &m.audit)
        .env("UKEY_SOFT_DIR", m.soft.dir())
        .env("UKEY_NO_AGENT", "1")
        .env("XDG_RUNTIME_DIR", m.dir.path())
        .env("HOME", m.dir.path())
        .env_remove("UKEY_PIN")
        .env_remove("UKEY_SO_PIN")
        .env_remove("UKEY_NEW_PIN")
        .env_remove("UKEY_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ukey")
}

fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

const SO: (&str, &str) = ("UKEY_SO_PIN", SO_PIN);
const USER: (&str, &str) = ("UKEY_PIN", USER_PIN);

fn bind(m: &Machine, serial: &str, rights: &str) -> Output {
    ukey(
        m,
        &[
            "helpdesk",
            "bind",
            "--token",
            serial,
            "--holder-name",
            "Zhang San",
            "--holder-id",
            "E1001",
            "--unit",
            "Finance",
            "--account",
            "root",
            "--rights",
            rights,
        ],
        &[SO],
    )
}

#[test]
fn bind_status_rebind_suspend_revoke_and_the_cli_path_obeys_them() {
    let m = Machine::new();
    m.policy(POLICY);
    let token = m.token("alice");
    let serial = token.carrier.info().serial.clone();

    let wrong_so = ukey(
        &m,
        &[
            "helpdesk",
            "bind",
            "--token",
            &serial,
            "--holder-name",
            "Z",
            "--holder-id",
            "1",
            "--unit",
            "U",
            "--account",
            "root",
        ],
        &[("UKEY_SO_PIN", "wrong-so-pin")],
    );
    assert_eq!(wrong_so.status.code(), Some(3), "a wrong SO PIN refuses the bind: {}", text(&wrong_so));
    assert_eq!(m.registry().find(&serial).unwrap(), None, "nothing was written");

    let out = bind(&m, &serial, "sign");
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Registered carrier serial"), "{}", text(&out));
    let record = m.registry().find(&serial).unwrap().expect("record written").record;
    assert_eq!(record.certificates, vec![token.cert_fp.clone()]);
    assert_eq!(record.operator, "root");
    let again = bind(&m, &serial, "sign");
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("already registered to Zhang San (Finance)"), "{}", text(&again));

    let status = json(&ukey(&m, &["helpdesk", "status", "--token", &serial, "--json"], &[]));
    assert_eq!(status["record"]["status"], "active");
    assert_eq!(status["record"]["holder"]["name"], "Zhang San");
    assert_eq!(status["compliance"]["compliant"], false);
    assert_eq!(status["tag"]["status"], "absent");
    assert_eq!(status["certificates"][0]["registered"], true);

    // The CLI's direct path obeys the record: no `enroll` right, no key generation.
    let keygen = ["keygen", "--token", serial.as_str(), "--alg", "sm2", "--label", "second"];
    let out = ukey(&m, &keygen, &[USER]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(text(&out).contains("this key is registered to Zhang San (Finance) for sign only; account root may not generate a key pair with it (no `enroll` right)"), "{}", text(&out));

    let out = ukey(&m, &["helpdesk", "rebind", "--token", &serial, "--rights", "sign,enroll"], &[SO]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ukey(&m, &keygen, &[USER]);
    assert!(out.status.success(), "enroll right granted: {}", text(&out));
    assert!(text(&out).contains("DEVELOPMENT MODE"), "the use says it is development mode: {}", text(&out));

    let out = ukey(&m, &["helpdesk", "suspend", "--token", &serial, "--reason", "reported lost"], &[SO]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ukey(&m, &["keygen", "--token", &serial, "--alg", "sm2", "--label", "third"], &[USER]);
    assert_eq!(out.status.code(), Some(6));
    assert!(text(&out).contains("its registration is suspended (reported lost)"), "{}", text(&out));

    let out = ukey(&m, &["helpdesk", "revoke", "--serial", &serial, "--reason", "holder left"], &[]);
    assert!(out.status.success(), "revoking a carrier that is not here needs no SO PIN: {}", text(&out));
    assert_eq!(m.registry().find(&serial).unwrap().unwrap().record.status, ukey::policy::record::Status::Revoked);

    // Every action is in the system audit log, whose chain verifies.
    let shown = json(&ukey(&m, &["audit", "show", "--system", "--event", "helpdesk", "--json"], &[]));
    let ops: Vec<String> = shown["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["record"]["result"] == "done")
        .map(|r| r["record"]["op"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ops, ["bind", "rebind", "suspend", "revoke"]);
    let failed_bind = shown["records"].as_array().unwrap().iter().any(|r| r["record"]["result"] == "failed");
    assert!(failed_bind, "the refused bind (wrong SO PIN) is on record too");
    let verify = ukey(&m, &["audit", "verify", "--system"], &[]);
    assert!(verify.status.success(), "{}", text(&verify));
    // And the holder's log has the uses and the refusals.
    let verify = ukey(&m, &["audit", "verify"], &[]);
    assert!(verify.status.success(), "{}", text(&verify));
    let refusals = json(&ukey(&m, &["audit", "show", "--event", "refusal", "--json"], &[]));
    assert_eq!(refusals["records"].as_array().unwrap().len(), 2, "{refusals}");
}

#[test]
fn unblock_and_reset_need_the_so_pin_and_reset_revokes_the_record() {
    let m = Machine::new();
    m.policy(POLICY);
    let token = m.token("locked");
    let serial = token.carrier.info().serial.clone();
    assert!(bind(&m, &serial, "sign").status.success());
    let wrong = Credential::Pin(pin("not-the-pin"));
    for _ in 0..10 {
        if token.carrier.pin_state().unwrap().user.locked {
            break;
        }
        let _ = token.carrier.verify_pin(PinRole::User, &wrong);
    }
    assert!(token.carrier.pin_state().unwrap().user.locked, "the user PIN is locked");

    let out = ukey(
        &m,
        &["helpdesk", "unblock", "--token", &serial],
        &[("UKEY_SO_PIN", "wrong"), ("UKEY_NEW_PIN", "fresh-1357")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let out = ukey(&m, &["helpdesk", "unblock", "--token", &serial], &[SO, ("UKEY_NEW_PIN", "fresh-1357")]);
    assert!(out.status.success(), "{}", text(&out));
    token.carrier.verify_pin(PinRole::User, &Credential::Pin(pin("fresh-1357"))).expect("the new PIN works");

    let out =
        ukey(&m, &["helpdesk", "reset", "--token", &serial, "--label", "fresh"], &[SO, ("UKEY_NEW_PIN", "fresh-2468")]);
    assert!(out.status.success(), "{}", text(&out));
    let record = m.registry().find(&serial).unwrap().unwrap().record;
    assert_eq!(record.status, ukey::policy::record::Status::Revoked);
    assert!(record.status_reason.unwrap().contains("reset"));
    let fresh = m.soft.token(&serial).unwrap();
    assert!(fresh.objects().unwrap().keys.is_empty(), "keys wiped");
}

#[test]
fn tag_write_and_verify_and_a_tag_alone_binds_the_carrier() {
    let m = Machine::new();
    m.policy(POLICY);
    let token = m.token("tagged");
    let serial = token.carrier.info().serial.clone();
    assert!(bind(&m, &serial, "sign").status.success());
    let key = SoftwareKey::generate(KeyAlgorithm::Sm2).unwrap();
    let cert =
        self_signed(&key, &parse_name("CN=Finance Bureau custody").unwrap(), &CertificateOptions::ca(365)).unwrap();
    std::fs::create_dir_all(&m.paths.anchors).unwrap();
    let cert_pem = certificate_pem(&cert).unwrap();
    std::fs::write(m.paths.anchors.join("unit.pem"), &cert_pem).unwrap();
    let key_file = m.dir.path().join("unit-key.pem");
    std::fs::write(&key_file, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let cert_file = m.dir.path().join("unit.pem");
    std::fs::write(&cert_file, &cert_pem).unwrap();

    let out = ukey(
        &m,
        &[
            "helpdesk",
            "tag",
            "write",
            "--token",
            &serial,
            "--key-file",
            key_file.to_str().unwrap(),
            "--cert",
            cert_file.to_str().unwrap(),
        ],
        &[SO, USER],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v = json(&ukey(&m, &["helpdesk", "tag", "verify", "--token", &serial, "--json"], &[]));
    assert_eq!(v["tag"]["status"], "valid", "{v}");
    assert_eq!(v["tag"]["payload"]["holder"]["name"], "Zhang San");

    // Another machine with the unit's anchor but no record: the tag binds the carrier.
    let other = Machine::new();
    other.policy(POLICY);
    std::fs::create_dir_all(&other.paths.anchors).unwrap();
    std::fs::write(other.paths.anchors.join("unit.pem"), &cert_pem).unwrap();
    let gate = other.gate();
    let (_, notices) = gated_sign(&gate, &token, 0, b"on another machine").expect("the tag's holder may use it");
    assert!(notices.iter().any(|n| n.contains("custody tag")), "{notices:?}");
    let (uid, login) = nobody();
    let err = gated_sign(&gate, &token, uid, b"x").unwrap_err();
    assert_eq!(err, format!("this key is registered to Zhang San (Finance); account {login} may not use it"));

    // Without the anchor the same tag is foreign.
    let stranger = Machine::new();
    stranger.policy(POLICY);
    let err = gated_sign(&stranger.gate(), &token, 0, b"x").unwrap_err();
    assert!(err.contains("signed by a key this machine does not trust"), "{err}");
}

#[test]
fn helpdesk_commands_need_the_helpdesk_role() {
    require_root("running a helpdesk command as another account");
    let m = Machine::new();
    m.policy(POLICY);
    let token = m.token("alice");
    let serial = token.carrier.info().serial.clone();
    // Let `nobody` reach the directories (as a helpdesk member could), so only the role refuses.
    let chmod = Command::new("chmod").args(["-R", "a+rwX"]).arg(m.dir.path()).status().unwrap();
    assert!(chmod.success());
    let (uid, login) = nobody();
    let out = Command::new("setpriv")
        .args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()])
        .arg(env!("CARGO_BIN_EXE_ukey"))
        .args([
            "helpdesk",
            "bind",
            "--token",
            &serial,
            "--holder-name",
            "Z",
            "--holder-id",
            "1",
            "--unit",
            "U",
            "--account",
            login,
        ])
        .env("UKEY_SYSTEM_DIR", &m.paths.root)
        .env("UKEY_AUDIT_DIR", m.dir.path().join("nobody-audit"))
        .env("UKEY_SOFT_DIR", m.soft.dir())
        .env("UKEY_NO_AGENT", "1")
        .env("UKEY_SO_PIN", SO_PIN)
        .env("HOME", m.dir.path())
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "this is a helpdesk task: account {login} is neither root nor in the group ukey-helpdesk"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(m.registry().find(&serial).unwrap(), None);
}

#[test]
fn the_compliance_report_maps_each_requirement_to_evidence() {
    let m = Machine::new();
    let token = m.token("alice");
    let serial = token.carrier.info().serial.clone();
    let personal = json(&ukey(&m, &["compliance", "report", "--json"], &[]));
    assert_eq!(personal["policy"], "personal");
    assert!(personal["requirements"].as_array().unwrap().iter().all(|r| r["verdict"] == "gap"), "{personal}");

    m.policy(POLICY);
    assert!(bind(&m, &serial, "sign").status.success());
    let _ = ukey(&m, &["keygen", "--token", &serial, "--alg", "sm2", "--label", "x"], &[USER]);
    let report = json(&ukey(&m, &["compliance", "report", "--json"], &[]));
    let req = |id: &str| report["requirements"].as_array().unwrap().iter().find(|r| r["id"] == id).cloned().unwrap();
    assert_eq!(req("compliant-carrier")["verdict"], "gap", "development mode and a software token: {report}");
    assert!(req("compliant-carrier")["evidence"].to_string().contains("NOT compliant"));
    assert_eq!(req("kept-by-holder")["verdict"], "met");
    assert_eq!(req("designated-persons")["verdict"], "met");
    assert_eq!(req("records")["verdict"], "met", "{report}");
    assert!(req("designated-persons")["evidence"].to_string().contains("1 refusals"), "{report}");
    assert_eq!(report["carriers"][0]["registered_to"], "Zhang San (Finance)");
    let human = ukey(&m, &["compliance", "report"], &[]);
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("[GAP] Certificates are stored in compliant carriers"),
        "{}",
        text(&human)
    );
}
