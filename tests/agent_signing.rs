//! Signing and authentication through the agent over its real sockets, with the soft token as
//! the carrier and the scripted pinentry (real Assuan) as the holder: PIN dialogs and what they
//! show, wrong PINs with tries left, refusal, lockout, removal during a request, the PIN cache,
//! and a sentinel PIN that never reaches the agent's log or any error message.

mod agent_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::time::{Duration, Instant};

use agent_support::{DEADLINE, SENTINEL_PIN, TestAgent, kind};
use serde_json::{Value, json};
use ukey_api::crypto::encoding::{base64_decode, base64_encode};
use ukey_api::crypto::prepare::SignData;
use ukey_api::crypto::verify::verify_signature;
use ukey_api::{CertificateInfo, Mechanism};

const DEV: &str = "http://localhost:8080";

fn pin_line() -> String {
    format!("pin {SENTINEL_PIN}")
}

fn assert_no_sentinel(agent: &TestAgent, answers: &[&Value]) {
    assert!(!agent.log().contains(SENTINEL_PIN), "the PIN reached the agent's log");
    for a in answers {
        assert!(!a.to_string().contains(SENTINEL_PIN), "the PIN reached an answer: {a}");
    }
}

fn paired(agent: &TestAgent) -> agent_support::Ws {
    let out = agent.ukey().args(["origins", "pair", DEV]).output().unwrap();
    assert!(out.status.success());
    agent.ws_hello(DEV)
}

#[test]
fn a_page_signs_and_the_signature_verifies() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV]);
    agent.script(&[&pin_line(), &pin_line()]);
    let mut ws = paired(&agent);
    let certs = ws.call("certs.list", json!({}));
    let list = certs["result"]["certificates"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{certs}");
    assert_eq!(list[0]["handle"], fx.handle);
    assert_eq!(list[0]["subject"], fx.subject);

    let data = b"contract no. 42";
    let r = ws.call("sign", json!({ "cert": fx.handle, "data": base64_encode(data) }));
    let result = &r["result"];
    assert_eq!(result["mechanism"], "ecdsa-sha256", "{r}");
    let sig = base64_decode(result["signature"].as_str().unwrap()).unwrap();
    assert_eq!(sig.len(), 64, "raw r||s");
    let cert = CertificateInfo::parse(&fx.cert_der).unwrap();
    verify_signature(&cert.public_key, &Mechanism::EcdsaSha256, SignData::Message(data), &sig)
        .expect("signature verifies");

    let dialogs = agent.dialogs();
    assert_eq!(dialogs.len(), 1);
    let desc = dialogs[0]["description"].as_str().unwrap();
    assert!(desc.contains(DEV) && desc.contains("CN=Alice") && desc.contains("sign"), "{desc}");
    let sm3 = hex::encode(ukey_api::HashAlg::Sm3.digest(data)).to_uppercase();
    assert!(desc.contains(&sm3[..4]), "the dialog shows a short SM3 of the data: {desc}");
    assert!(desc.contains("SOFTWARE"), "the dialog says it is a software token");

    // DER output of a digest.
    let digest = ukey_api::HashAlg::Sha256.digest(data);
    let r2 = ws.call("sign", json!({ "cert": fx.handle, "digest": base64_encode(&digest), "format": "der" }));
    let der = base64_decode(r2["result"]["signature"].as_str().unwrap()).unwrap();
    assert_eq!(der[0], 0x30, "DER SEQUENCE");
    verify_signature(&cert.public_key, &Mechanism::EcdsaSha256, SignData::Digest(&digest), &der).unwrap();
    assert_no_sentinel(&agent, &[&r, &r2]);
}

#[test]
fn a_wrong_pin_is_asked_again_with_the_tries_left() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV]);
    agent.script(&["pin 0000-wrong", &pin_line()]);
    let mut ws = paired(&agent);
    let r = ws.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" }));
    assert!(r.get("result").is_some(), "{r}");
    let dialogs = agent.dialogs();
    assert_eq!(dialogs.len(), 2);
    assert!(dialogs[0].get("error").is_none());
    let err = dialogs[1]["error"].as_str().unwrap();
    assert!(err.contains("Wrong PIN") && err.contains("2 tries left"), "{err}");
    assert_no_sentinel(&agent, &[&r]);
}

#[test]
fn three_wrong_pins_lock_and_say_so() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV]);
    agent.script(&["pin wrong-1", "pin wrong-2", "pin wrong-3"]);
    let mut ws = paired(&agent);
    let r = ws.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" }));
    assert_eq!(kind(&r), "PinLocked", "{r}");
    let dialogs = agent.dialogs();
    assert!(dialogs[2]["error"].as_str().unwrap().contains("1 try left"), "{:?}", dialogs);
    // A locked PIN gets no dialog at all.
    let r = ws.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" }));
    assert_eq!(kind(&r), "PinLocked");
    assert_eq!(agent.dialogs().len(), 3);
    let t = ws.call("tokens.list", json!({}));
    assert_eq!(t["result"]["tokens"][0]["pin"]["user"]["locked"], true);
}

#[test]
fn refused_consent_is_a_typed_cancellation() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV]);
    agent.script(&["cancel"]);
    let mut ws = paired(&agent);
    let r = ws.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" }));
    assert_eq!(kind(&r), "Cancelled", "{r}");
    assert_eq!(r["error"]["code"], -32000);
    // Nothing was spent: still 3 tries.
    let t = ws.call("tokens.list", json!({}));
    assert_eq!(t["result"]["tokens"][0]["pin"]["user"]["retries_left"], 3);
}

#[test]
fn auth_tokens_bind_the_origin_and_verify() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV]);
    agent.script(&[&pin_line(), &pin_line()]);
    let mut ws = paired(&agent);
    let nonce = "Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OQ==";
    let r = ws.call("auth", json!({ "cert": fx.handle, "nonce": nonce }));
    let token: ukey::agent::auth::AuthToken = serde_json::from_value(r["result"].clone()).expect("a token");
    assert_eq!(token.origin, DEV);
    let cert = ukey::agent::auth::verify_token(&token, DEV, nonce, None).expect("token verifies");
    assert_eq!(cert.subject, fx.subject);
    assert!(ukey::agent::auth::verify_token(&token, "https://evil.example", nonce, None).is_err());
    assert!(ukey::agent::auth::verify_token(&token, DEV, "another-nonce-0123", None).is_err());
    let mut forged = token.clone();
    forged.origin = "https://evil.example".into();
    assert!(ukey::agent::auth::verify_token(&forged, "https://evil.example", nonce, None).is_err(), "origin is signed");
    // A page cannot pick the origin; nonces are bounded.
    let r = ws.call("auth", json!({ "cert": fx.handle, "nonce": nonce, "origin": "https://bank.example" }));
    assert_eq!(kind(&r), "Forbidden");
    let r = ws.call("auth", json!({ "cert": fx.handle, "nonce": "short" }));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = ws.call("auth", json!({ "cert": fx.handle, "nonce": "x".repeat(300) }));
    assert_eq!(r["error"]["code"], -32602);
    // A local program names the origin.
    let mut c = agent.unix();
    let t = c.call("auth", json!({ "cert": fx.handle, "nonce": nonce, "origin": "https://bank.example" })).unwrap();
    let token: ukey::agent::auth::AuthToken = serde_json::from_value(t).unwrap();
    ukey::agent::auth::verify_token(&token, "https://bank.example", nonce, None).unwrap();
    let dialogs = agent.dialogs();
    assert!(dialogs[1]["description"].as_str().unwrap().contains("to https://bank.example"));
}

#[test]
fn removing_the_carrier_during_a_request_ends_it() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV]);
    let gate = agent.dir.path().join("gate");
    agent.script(&[&format!("wait {}", gate.display()), &pin_line()]);
    let mut events = paired(&agent);
    assert!(events.call("events.subscribe", json!({})).get("result").is_some());
    let handle = fx.handle.clone();
    let port = agent.port;
    let signer = std::thread::spawn(move || {
        let mut ws = agent_support::ws_connect(port, "127.0.0.1", Some(DEV)).unwrap();
        ws.call("hello", json!({ "versions": [1] }));
        ws.call("sign", json!({ "cert": handle, "data": "aGVsbG8=" }))
    });
    let waiting = gate.with_extension("waiting");
    let until = Instant::now() + DEADLINE;
    while !waiting.exists() {
        assert!(Instant::now() < until, "the PIN dialog never opened");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Pull the token out while the holder looks at the dialog.
    std::fs::remove_file(soft::soft_dir(&agent).join(format!("{}.token", fx.serial))).unwrap();
    let r = signer.join().unwrap();
    assert_eq!(kind(&r), "TokenRemoved", "{r}");
    let ev = events.next_notification();
    assert_eq!(ev["params"]["event"]["type"], "carrier.removed", "{ev}");
    assert_eq!(ev["params"]["event"]["token"], fx.token);
    std::fs::write(&gate, b"").unwrap();
}

#[test]
fn a_local_program_may_supply_the_pin_and_a_wrong_one_is_not_retried() {
    let (agent, fx) = soft::with_soft(&[]);
    let mut c = agent.unix();
    let r = c.call("sign", json!({ "key": fx.handle, "data": "aGVsbG8=", "pin": SENTINEL_PIN })).unwrap();
    assert!(r["signature"].is_string());
    let e = c.call("sign", json!({ "key": fx.handle, "data": "aGVsbG8=", "pin": "wrong-pin" })).unwrap_err();
    assert_eq!(e.kind(), "WrongPin");
    assert!(agent.dialogs().is_empty(), "no dialog when the client supplies the PIN");
    let keys = c.call("keys.list", json!({})).unwrap();
    assert_eq!(keys["keys"][0]["handle"], fx.handle);
    assert_eq!(keys["keys"][0]["mechanisms"][0], "ecdsa-sha256");
    assert_no_sentinel(&agent, &[&r]);
}

#[test]
fn the_optional_pin_cache_is_bounded_by_uses() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV, "--pin-cache", "300:2"]);
    agent.script(&[&pin_line(), &pin_line()]);
    let mut ws = paired(&agent);
    for _ in 0..3 {
        let r = ws.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" }));
        assert!(r.get("result").is_some(), "{r}");
    }
    assert_eq!(agent.dialogs().len(), 1, "one dialog, then two cached uses");
    let r = ws.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" }));
    assert!(r.get("result").is_some());
    assert_eq!(agent.dialogs().len(), 2, "the cache ran out of uses");
    // Another origin never gets this origin's cached PIN.
    let out = agent.ukey().args(["origins", "pair", "https://other.example"]).output().unwrap();
    assert!(out.status.success());
    let mut other = agent.ws_hello("https://other.example");
    agent.script(&["cancel"]);
    let r = other.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" }));
    assert_eq!(kind(&r), "Cancelled");
    assert_no_sentinel(&agent, &[&r]);
}

#[test]
fn concurrent_requests_behind_one_dialog_share_its_pin() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV, "--pin-cache", "300:10"]);
    let gate = agent.dir.path().join("gate");
    agent.script(&[&format!("wait {}", gate.display()), &pin_line()]);
    let _ws = paired(&agent);
    let sign = |port: u16, handle: String| {
        std::thread::spawn(move || {
            let mut ws = agent_support::ws_connect(port, "127.0.0.1", Some(DEV)).unwrap();
            ws.call("hello", json!({ "versions": [1] }));
            ws.call("sign", json!({ "cert": handle, "data": "aGVsbG8=" }))
        })
    };
    let first = sign(agent.port, fx.handle.clone());
    let until = Instant::now() + DEADLINE;
    while !gate.with_extension("waiting").exists() {
        assert!(Instant::now() < until, "the first PIN dialog never opened");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Three more requests of the same page arrive while the holder looks at the dialog.
    let others: Vec<_> = (0..3).map(|_| sign(agent.port, fx.handle.clone())).collect();
    let waiting = "a PIN dialog is open; this request waits for it";
    while agent.log().matches(waiting).count() < 3 {
        assert!(Instant::now() < until, "the other requests never queued behind the dialog:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(&gate, b"").unwrap();
    for t in std::iter::once(first).chain(others) {
        let r = t.join().unwrap();
        assert!(r.get("result").is_some(), "{r}");
    }
    assert_eq!(agent.dialogs().len(), 1, "one dialog served all four requests");
}

#[test]
fn revoking_an_origin_wipes_its_cached_pins() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV, "--pin-cache", "300:10"]);
    agent.script(&[&pin_line(), &pin_line()]);
    let mut ws = paired(&agent);
    for _ in 0..2 {
        assert!(ws.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" })).get("result").is_some());
    }
    assert_eq!(agent.dialogs().len(), 1, "the second signature used the cached PIN");
    let out = agent.ukey().args(["origins", "revoke", DEV]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(kind(&ws.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" }))), "NotPaired");
    // Paired again (from the CLI: no dialog), the page must be asked for the PIN again.
    let mut ws = paired(&agent);
    assert!(ws.call("sign", json!({ "cert": fx.handle, "data": "aGVsbG8=" })).get("result").is_some());
    assert_eq!(agent.dialogs().len(), 2, "no cached PIN survived the revocation");
}

#[test]
fn a_pin_dialog_does_not_stall_other_clients() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV]);
    let gate = agent.dir.path().join("gate");
    agent.script(&[&format!("wait {}", gate.display()), &pin_line()]);
    let _ws = paired(&agent);
    let handle = fx.handle.clone();
    let port = agent.port;
    let signer = std::thread::spawn(move || {
        let mut ws = agent_support::ws_connect(port, "127.0.0.1", Some(DEV)).unwrap();
        ws.call("hello", json!({ "versions": [1] }));
        ws.call("sign", json!({ "cert": handle, "data": "aGVsbG8=" }))
    });
    let until = Instant::now() + DEADLINE;
    while !gate.with_extension("waiting").exists() {
        assert!(Instant::now() < until);
        std::thread::sleep(Duration::from_millis(10));
    }
    // While the dialog is open, other clients list, and use the carrier.
    let mut c = agent.unix();
    assert!(c.call("tokens.list", json!({})).is_ok());
    assert!(c.call("certs.list", json!({})).is_ok());
    let r = c.call("sign", json!({ "key": fx.handle, "data": "aGk=", "pin": SENTINEL_PIN }));
    assert!(r.is_ok(), "{r:?}");
    std::fs::write(&gate, b"").unwrap();
    let r = signer.join().unwrap();
    assert!(r.get("result").is_some(), "{r}");
}

#[test]
fn sm2_signatures_follow_gmt_0009() {
    let (agent, fx) = soft::with_soft_key(ukey_api::KeyAlgorithm::Sm2, 3, &[]);
    let mut c = agent.unix();
    let data = b"SM2 message";
    let r = c.call("sign", json!({ "key": fx.handle, "data": base64_encode(data), "pin": SENTINEL_PIN })).unwrap();
    assert_eq!(r["mechanism"], "sm2-sm3");
    let sig = base64_decode(r["signature"].as_str().unwrap()).unwrap();
    let cert = CertificateInfo::parse(&fx.cert_der).unwrap();
    let m = Mechanism::Sm2Sm3 { user_id: ukey_api::DEFAULT_SM2_ID.to_vec() };
    verify_signature(&cert.public_key, &m, SignData::Message(data), &sig).expect("SM2 verifies with the default id");
    let r = c
        .call(
            "sign",
            json!({ "key": fx.handle, "data": base64_encode(data), "sm2_id": "alice@example", "pin": SENTINEL_PIN }),
        )
        .unwrap();
    let sig = base64_decode(r["signature"].as_str().unwrap()).unwrap();
    let m = Mechanism::Sm2Sm3 { user_id: b"alice@example".to_vec() };
    verify_signature(&cert.public_key, &m, SignData::Message(data), &sig).expect("SM2 verifies with the given id");
}
