//! The custody gate on real soft tokens: every refusal path of the policy, the notices of the
//! permissive modes, and the audit records each use leaves.

mod custody_support;

use custody_support::*;
use ukey::agent::gate::{Gate, Operation, Outcome};
use ukey::audit::Event;
use ukey::policy::accounts::Account;
use ukey::policy::inuse::InUse;
use ukey::policy::record::{Right, Status};

const DEV_DENY: &str = "mode = \"deny\"\ndevelopment = true\n";
const ENFORCED: &str = "mode = \"deny\"\n";

#[test]
fn personal_mode_allows_says_so_and_records_the_use() {
    let m = Machine::new();
    let token = m.token("alice");
    let gate = m.gate();
    let (sig, notices) = gated_sign(&gate, &token, 0, b"contract").expect("personal mode allows");
    assert!(!sig.is_empty());
    assert!(notices.iter().any(|n| n.contains("no custody policy is in force")), "{notices:?}");
    let records = m.records();
    let intent = last_of(&records, Event::Intent).expect("intent record");
    let used = last_of(&records, Event::Use).expect("use record");
    assert_eq!(used.intent, Some(intent.seq));
    assert_eq!(used.result.as_deref(), Some("done"));
    assert_eq!(used.policy.as_deref(), Some("personal"));
    assert_eq!(used.data_sm3.as_deref(), Some(hex::encode(ukey_api::HashAlg::Sm3.digest(b"contract")).as_str()));
    assert_eq!(used.account.as_deref(), Some("root"));
    assert!(ukey::audit::verify_dir(&m.audit, &[]).unwrap().ok());
}

#[test]
fn a_software_token_is_refused_outside_development_mode() {
    let m = Machine::new();
    let token = m.token("alice");
    m.bind(&token, &["root"], &[Right::Sign]);
    m.policy(ENFORCED);
    let err = gated_sign(&m.gate(), &token, 0, b"x").unwrap_err();
    assert!(
        err.starts_with("this key is registered to Zhang San (Finance), but a software token keeps its keys in files"),
        "{err}"
    );
    assert!(err.contains("compliant carrier"), "{err}");
    let refusal = last_of(&m.records(), Event::Refusal).cloned().expect("refusal recorded");
    assert_eq!(refusal.result.as_deref(), Some("refused"));

    m.policy(DEV_DENY);
    let (_, notices) = gated_sign(&m.gate(), &token, 0, b"x").expect("development mode allows");
    assert!(notices.iter().any(|n| n.starts_with("DEVELOPMENT MODE")), "{notices:?}");
    assert_eq!(last_of(&m.records(), Event::Use).unwrap().policy.as_deref(), Some("development"));
}

#[test]
fn another_account_is_told_whose_key_it_is() {
    let m = Machine::new();
    m.policy(DEV_DENY);
    let token = m.token("alice");
    m.bind(&token, &["root"], &[Right::Sign, Right::Auth]);
    let gate = m.gate();
    gated_sign(&gate, &token, 0, b"mine").expect("the holder signs");
    let (uid, login) = nobody();
    let err = gated_sign(&gate, &token, uid, b"not yours").unwrap_err();
    assert_eq!(err, format!("this key is registered to Zhang San (Finance); account {login} may not use it"));
    let refusal = last_of(&m.records(), Event::Refusal).cloned().unwrap();
    assert_eq!(refusal.account.as_deref(), Some(login));
    assert_eq!(refusal.uid, Some(uid));
    assert_eq!(refusal.reason.as_deref(), Some(err.as_str()));
}

#[test]
fn suspended_and_revoked_records_refuse_at_the_next_use() {
    let m = Machine::new();
    m.policy(DEV_DENY);
    let token = m.token("alice");
    let mut record = m.bind(&token, &["root"], &[Right::Sign]);
    let gate = m.gate();
    gated_sign(&gate, &token, 0, b"a").expect("active");
    record.status = Status::Suspended;
    record.status_reason = Some("reported lost".into());
    m.registry().write(&record).unwrap();
    let err = gated_sign(&gate, &token, 0, b"b").unwrap_err();
    assert_eq!(
        err,
        "this key is registered to Zhang San (Finance) and its registration is suspended (reported lost); it may not be used — ask the helpdesk"
    );
    record.status = Status::Revoked;
    record.status_reason = Some("holder left".into());
    m.registry().write(&record).unwrap();
    let err = gated_sign(&gate, &token, 0, b"c").unwrap_err();
    assert!(err.contains("its registration is revoked (holder left)"), "{err}");
}

#[test]
fn an_unregistered_carrier_is_refused_under_deny_and_warned_under_warn() {
    let m = Machine::new();
    let token = m.token("stray");
    m.policy(DEV_DENY);
    let err = gated_sign(&m.gate(), &token, 0, b"x").unwrap_err();
    let serial = token.carrier.info().serial.clone();
    assert!(
        err.starts_with(&format!("this key (ukey built-in software token, serial {serial}) is not registered"))
            || err.contains("is not registered in this machine's custody registry"),
        "{err}"
    );
    assert!(err.contains("ukey helpdesk bind"), "{err}");

    m.policy("mode = \"warn\"\ndevelopment = true\n");
    let (_, notices) = gated_sign(&m.gate(), &token, 0, b"x").expect("warn allows");
    assert!(
        notices.iter().any(|n| n.starts_with(&format!("warning: this key (serial {serial}) is not registered"))),
        "{notices:?}"
    );
    assert!(last_of(&m.records(), Event::Use).unwrap().holder.is_none(), "recorded as unregistered");
}

#[test]
fn a_use_outside_the_rights_is_refused() {
    let m = Machine::new();
    m.policy(DEV_DENY);
    let token = m.token("alice");
    m.bind(&token, &["root"], &[Right::Sign]);
    let err = gated(&m.gate(), &token, 0, Operation::Authenticate, b"nonce").unwrap_err();
    assert_eq!(
        err,
        "this key is registered to Zhang San (Finance) for sign only; account root may not log in (authenticate) with it (no `auth` right)"
    );
    let err = gated(&m.gate(), &token, 0, Operation::GenerateKey, b"").unwrap_err();
    assert!(err.contains("no `enroll` right"), "{err}");
    let err = gated(&m.gate(), &token, 0, Operation::Initialize, b"").unwrap_err();
    assert!(err.contains("wiping a registered key is a helpdesk task"), "{err}");
}

#[test]
fn a_certificate_registered_to_another_carrier_is_refused() {
    let m = Machine::new();
    m.policy("mode = \"warn\"\ndevelopment = true\n");
    let original = m.token("original");
    let record = m.bind(&original, &["root"], &[Right::Sign]);
    // A second carrier claiming the registered certificate (a copied key).
    let copy = m.token("copy");
    let forged = Token {
        carrier: copy.carrier.clone(),
        key: copy.key.clone(),
        spki: copy.spki.clone(),
        cert_fp: record.certificates[0].clone(),
    };
    let err = gated_sign(&m.gate(), &forged, 0, b"x").unwrap_err();
    assert!(
        err.contains(&format!("is registered to Zhang San (Finance) on the key with serial {}", record.carrier.serial)),
        "{err}"
    );
    assert!(err.contains("a copy of a registered key may not be used"), "{err}");
}

#[test]
fn a_certificate_not_in_the_record_is_refused() {
    let m = Machine::new();
    m.policy(DEV_DENY);
    let token = m.token("alice");
    let mut record = m.bind(&token, &["root"], &[Right::Sign]);
    record.certificates = vec!["00".repeat(32)];
    m.registry().write(&record).unwrap();
    let err = gated_sign(&m.gate(), &token, 0, b"x").unwrap_err();
    assert!(err.contains("is not the registered one") && err.contains("ukey helpdesk rebind"), "{err}");
}

#[test]
fn a_broken_policy_refuses_everything() {
    let m = Machine::new();
    let token = m.token("alice");
    m.policy("mode = \"dney\"\n");
    let err = gated_sign(&m.gate(), &token, 0, b"x").unwrap_err();
    assert!(err.contains("is not valid") && err.contains("every use is refused"), "{err}");
}

#[test]
fn a_carrier_in_use_by_another_account_is_refused_naming_it() {
    let m = Machine::new();
    m.policy("mode = \"warn\"\ndevelopment = true\n");
    let token = m.token("shared");
    let (uid, login) = nobody();
    let markers = InUse::new(&m.paths.in_use);
    let held =
        markers.acquire(&token.carrier.info().serial, &Account { uid, login: Some(login.into()) }, |_| true).unwrap();
    let err = gated_sign(&m.gate(), &token, 0, b"x").unwrap_err();
    assert_eq!(
        err,
        format!(
            "this key is in use by account {login} right now; it cannot be used by two accounts at the same time — try again when they are done"
        )
    );
    drop(held);
    gated_sign(&m.gate(), &token, 0, b"x").expect("free again once the other use ended");
}

#[test]
fn a_bound_carrier_ignores_markers_of_accounts_it_does_not_allow() {
    let m = Machine::new();
    m.policy(DEV_DENY);
    let token = m.token("alice");
    m.bind(&token, &["root"], &[Right::Sign]);
    let (uid, login) = nobody();
    let held = InUse::new(&m.paths.in_use)
        .acquire(&token.carrier.info().serial, &Account { uid, login: Some(login.into()) }, |_| true)
        .unwrap();
    gated_sign(&m.gate(), &token, 0, b"x").expect("nobody may not use it, so nobody cannot block it");
    drop(held);
}

#[test]
fn an_abandoned_use_is_recorded() {
    let m = Machine::new();
    let token = m.token("alice");
    let gate = m.gate();
    let ctx = token.use_ctx(0, Operation::Sign, b"x");
    let permit = gate.authorize(&ctx).unwrap();
    drop(permit);
    let used = last_of(&m.records(), Event::Use).cloned().unwrap();
    assert_eq!(used.result.as_deref(), Some("failed"));
    assert_eq!(used.reason.as_deref(), Some("Abandoned"));
    let _ = gate.record(&ctx, &Outcome::Done);
}
