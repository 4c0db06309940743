//! Pairing web origins through the holder's pairing dialog (scripted pinentry, real Assuan): the
//! holder allows a site by typing the code the dialog shows. Also listing / revoking them with
//! `ukey origins`, and
//! what an empty or mistyped code does.

mod agent_support;
#[path = "agent_support/soft.rs"]
mod soft;

use agent_support::{TestAgent, kind};
use serde_json::json;

const DEV: &str = "http://localhost:8080";

#[test]
fn a_confirmed_origin_is_paired_listed_and_revoked() {
    let agent = TestAgent::start(&["--dev-origin", DEV]);
    agent.script(&["ok"]);
    let mut ws = agent.ws_hello(DEV);
    assert_eq!(kind(&ws.call("tokens.list", json!({}))), "NotPaired");
    let r = ws.call("pair", json!({}));
    assert_eq!(r["result"]["paired"], true, "{r}");
    assert_eq!(r["result"]["grants"], json!(["sign"]));
    let dialogs = agent.dialogs();
    assert_eq!(dialogs.len(), 1);
    assert_eq!(dialogs[0]["command"], "GETPIN", "allowing takes typing the shown code, not a button");
    assert_eq!(dialogs[0]["answer"], "code");
    assert!(dialogs[0]["description"].as_str().unwrap().contains(DEV), "{}", dialogs[0]);
    assert!(ws.call("tokens.list", json!({})).get("result").is_some());
    // Pairing again needs no dialog.
    assert_eq!(ws.call("pair", json!({ "grants": ["sign"] }))["result"]["paired"], true);
    assert_eq!(agent.dialogs().len(), 1);

    let out = agent.ukey().args(["origins", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(DEV) && text.contains("sign"), "{text}");

    let out = agent.ukey().args(["origins", "revoke", DEV]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Effective on the very next request of the open connection.
    assert_eq!(kind(&ws.call("certs.list", json!({}))), "NotPaired");
    agent.wait_log(&format!("origin {DEV} revoked"));
}

#[test]
fn a_refused_origin_stays_unpaired_and_cannot_flood_the_holder() {
    let agent = TestAgent::start(&["--dev-origin", DEV]);
    agent.script(&["no", "ok"]);
    let mut ws = agent.ws_hello(DEV);
    let r = ws.call("pair", json!({}));
    assert_eq!(kind(&r), "Cancelled", "{r}");
    let r = ws.call("pair", json!({}));
    assert_eq!(kind(&r), "Cancelled", "a second request right after a refusal gets no dialog: {r}");
    assert_eq!(agent.dialogs().len(), 1, "one dialog only");
    assert_eq!(kind(&ws.call("tokens.list", json!({}))), "NotPaired");
}

#[test]
fn enrolment_needs_its_own_grant() {
    let agent = TestAgent::start(&["--dev-origin", DEV]);
    agent.script(&["ok", "ok"]);
    let mut ws = agent.ws_hello(DEV);
    assert_eq!(ws.call("pair", json!({}))["result"]["grants"], json!(["sign"]));
    let r = ws.call("keys.generate", json!({ "token": "soft:x", "algorithm": "p256", "label": "k" }));
    assert_eq!(kind(&r), "MissingGrant", "{r}");
    assert_eq!(r["error"]["data"]["grant"], "enroll");
    let r = ws.call("pair", json!({ "grants": ["enroll"] }));
    assert_eq!(r["result"]["grants"], json!(["sign", "enroll"]), "{r}");
    let dialogs = agent.dialogs();
    assert_eq!(dialogs.len(), 2);
    assert!(dialogs[1]["description"].as_str().unwrap().contains("generate keys"));
}

#[test]
fn pairing_survives_an_agent_restart_and_works_without_an_agent() {
    let mut agent = TestAgent::start(&[]);
    let out = agent.ukey().args(["origins", "pair", "https://Bank.Example:443"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(agent.terminate());
    // No agent: the CLI edits the store directly.
    let out = agent.ukey().args(["--json", "origins", "list"]).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["origins"][0]["origin"], "https://bank.example");
    agent.restart();
    let mut ws = agent.ws_hello("https://bank.example");
    assert!(ws.call("tokens.list", json!({})).get("result").is_some());
}

#[test]
fn an_unreachable_pinentry_refuses_instead_of_pairing() {
    let agent = TestAgent::start(&["--dev-origin", DEV, "--pinentry", "/nonexistent/pinentry"]);
    let mut ws = agent.ws_hello(DEV);
    let r = ws.call("pair", json!({}));
    assert!(r.get("error").is_some(), "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("pinentry"), "{r}");
    assert_eq!(kind(&ws.call("tokens.list", json!({}))), "NotPaired");
}

#[test]
fn revoking_an_origin_ends_its_event_subscriptions() {
    let (agent, _fx) = soft::with_soft(&["--dev-origin", DEV]);
    let out = agent.ukey().args(["origins", "pair", DEV]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut ws = agent.ws_hello(DEV);
    let r = ws.call("events.subscribe", json!({}));
    assert!(r["result"]["subscription"].is_u64(), "{r}");
    let bob = soft::soft_token(&soft::soft_dir(&agent), "Bob", ukey_api::KeyAlgorithm::P256, 3);
    let ev = ws.next_notification();
    assert_eq!(ev["params"]["event"]["type"], "carrier.inserted", "{ev}");
    assert_eq!(ev["params"]["event"]["token"]["id"], bob.token);

    let out = agent.ukey().args(["origins", "revoke", DEV]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The next carrier event is not delivered: the subscription ends with a notice instead.
    let carol = soft::soft_token(&soft::soft_dir(&agent), "Carol", ukey_api::KeyAlgorithm::P256, 3);
    // Bob's own later events (his certificate appearing) may already be on the way; nothing
    // about Carol may come before the end notice.
    let ev = loop {
        let ev = ws.next_notification();
        if ev["params"]["event"]["type"] == "events.ended" {
            break ev;
        }
        let event = &ev["params"]["event"];
        let token = event["token"]["id"].as_str().or(event["token"].as_str()).unwrap_or_default();
        assert_eq!(token, bob.token, "only Bob's events come before the end: {ev}");
        assert_ne!(token, carol.token, "nothing about the new carrier leaks: {ev}");
    };
    assert!(!ev.to_string().contains("Carol"), "nothing about the new carrier leaks: {ev}");
    agent.wait_log("event subscription");
    assert_eq!(kind(&ws.call("events.subscribe", json!({}))), "NotPaired");
}

/// A holder who presses Return on an empty field, or types something other than the code, does
/// not let the site in: the dialog repeats with an error for a wrong code (three tries in all),
/// and an empty entry refuses at once.
#[test]
fn an_empty_or_wrong_code_refuses() {
    let agent = TestAgent::start(&["--dev-origin", DEV]);
    // "pin X" types X; the code is four digits, so "x" and "12345" are never it.
    agent.script(&["pin x", "pin 12345", "pin x"]);
    let mut ws = agent.ws_hello(DEV);
    let r = ws.call("pair", json!({}));
    assert_eq!(kind(&r), "Cancelled", "{r}");
    let dialogs = agent.dialogs();
    assert_eq!(dialogs.len(), 3, "{dialogs:?}");
    assert!(dialogs[0].get("error").is_none(), "{}", dialogs[0]);
    assert!(dialogs[1]["error"].as_str().unwrap_or("").contains("not the code"), "{}", dialogs[1]);
    assert_eq!(kind(&ws.call("certs.list", json!({}))), "NotPaired");

    let agent = TestAgent::start(&["--dev-origin", DEV]);
    agent.script(&["pin ", "ok"]);
    let mut ws = agent.ws_hello(DEV);
    let r = ws.call("pair", json!({}));
    assert_eq!(kind(&r), "Cancelled", "an empty entry refuses: {r}");
    assert_eq!(agent.dialogs().len(), 1, "no second dialog after an empty entry");
}
