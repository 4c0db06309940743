//! Enrolment (keys.generate, csr.create, certs.import behind the enroll grant), PIN
//! administration on the Unix socket (pin.change, pin.unblock, token.init) and hot-plug events,
//! through the agent's real sockets with the scripted pinentry.

mod agent_support;
#[path = "agent_support/soft.rs"]
mod soft;

use agent_support::{SENTINEL_PIN, kind};
use serde_json::json;
use soft::SO_PIN;
use ukey_api::crypto::encoding::base64_encode;

const DEV: &str = "http://localhost:8080";

#[test]
fn a_page_with_the_enroll_grant_generates_requests_and_imports() {
    let (agent, fx) = soft::with_soft(&["--dev-origin", DEV]);
    let pin = format!("pin {SENTINEL_PIN}");
    agent.script(&["ok", &pin, &pin, &pin]);
    let mut ws = agent.ws_hello(DEV);
    let r = ws.call("pair", json!({ "grants": ["sign", "enroll"] }));
    assert_eq!(r["result"]["grants"], json!(["sign", "enroll"]), "{r}");
    let mut events = agent.ws_hello(DEV);
    events.call("events.subscribe", json!({}));

    let key = ws.call("keys.generate", json!({ "token": fx.token, "algorithm": "p256", "label": "web login" }));
    let handle = key["result"]["handle"].as_str().unwrap_or_else(|| panic!("{key}")).to_string();
    assert_eq!(key["result"]["algorithm"], "p256");
    let ev = events.next_notification();
    assert_eq!(ev["params"]["event"]["type"], "certs.changed", "{ev}");

    let csr = ws.call("csr.create", json!({ "key": handle, "subject": "CN=Alice Web,O=Example" }));
    let pem = csr["result"]["csr"].as_str().unwrap_or_else(|| panic!("{csr}"));
    let info = ukey_api::crypto::csr::verify_csr(pem.as_bytes(), None).expect("the CSR's self-signature verifies");
    assert!(info.subject.to_string().contains("Alice Web"));

    // A CA issues the certificate; the page imports it.
    let ca_key = ukey_api::crypto::software::SoftwareKey::generate(ukey_api::KeyAlgorithm::P256).unwrap();
    let ca_name = ukey_api::crypto::name::parse_name("CN=Test CA").unwrap();
    let ca_cert = ukey_api::crypto::certbuild::self_signed(
        &ca_key,
        &ca_name,
        &ukey_api::crypto::certbuild::CertificateOptions::ca(30),
    )
    .unwrap();
    let issued = ukey_api::crypto::certbuild::issue_from_csr(
        &ca_key,
        &ca_cert,
        pem.as_bytes(),
        &ukey_api::crypto::certbuild::CertificateOptions::end_entity(30),
    )
    .unwrap();
    let imported = ws.call("certs.import", json!({ "token": fx.token, "certificate": base64_encode(&issued) }));
    assert_eq!(imported["result"]["handle"], handle, "{imported}");
    assert_eq!(imported["result"]["has_key"], true);
    let list = ws.call("certs.list", json!({}));
    assert_eq!(list["result"]["certificates"].as_array().unwrap().len(), 2);
    let dialogs = agent.dialogs();
    assert!(dialogs[1]["description"].as_str().unwrap().contains("generate a key pair"), "{dialogs:?}");
    assert!(dialogs[2]["description"].as_str().unwrap().contains("certificate request"));
    assert!(dialogs[3]["description"].as_str().unwrap().contains("store a certificate"));
    assert!(!agent.log().contains(SENTINEL_PIN));
}

#[test]
fn pin_change_unblock_and_init_on_the_unix_socket() {
    let (agent, fx) = soft::with_soft(&[]);
    let new_pin = "n3w-pin-5555";
    // Change through dialogs: current PIN, then the new one twice.
    agent.script(&[&format!("pin {SENTINEL_PIN}"), &format!("pin {new_pin}"), &format!("pin {new_pin}")]);
    let mut c = agent.unix();
    assert_eq!(c.call("pin.change", json!({ "token": fx.token })).unwrap()["changed"], true);
    let dialogs = agent.dialogs();
    assert_eq!(dialogs.len(), 3);
    assert!(dialogs[1]["description"].as_str().unwrap().contains("Choose the new PIN"));
    assert!(c.call("sign", json!({ "key": fx.handle, "data": "aGk=", "pin": new_pin })).is_ok());
    // Lock it with wrong supplied PINs, then unblock with the SO PIN through a dialog.
    for _ in 0..3 {
        let _ = c.call("sign", json!({ "key": fx.handle, "data": "aGk=", "pin": "wrong-pin" }));
    }
    let e = c.call("sign", json!({ "key": fx.handle, "data": "aGk=", "pin": new_pin })).unwrap_err();
    assert_eq!(e.kind(), "PinLocked");
    agent.script(&[&format!("pin {SENTINEL_PIN}"), &format!("pin {SENTINEL_PIN}"), &format!("pin {SO_PIN}")]);
    assert_eq!(c.call("pin.unblock", json!({ "token": fx.token })).unwrap()["unblocked"], true);
    assert!(agent.dialogs().last().unwrap()["prompt"].as_str().unwrap().contains("SO PIN"));
    assert!(c.call("sign", json!({ "key": fx.handle, "data": "aGk=", "pin": SENTINEL_PIN })).is_ok());
    // Initialise with supplied PINs: everything is wiped.
    let r = c
        .call("token.init", json!({ "token": fx.token, "label": "Fresh", "so_pin": SO_PIN, "user_pin": SENTINEL_PIN }))
        .unwrap();
    assert_eq!(r["initialized"], true);
    let certs = c.call("certs.list", json!({})).unwrap();
    assert_eq!(certs["certificates"].as_array().unwrap().len(), 0, "{certs}");
    assert!(!agent.log().contains(SENTINEL_PIN) && !agent.log().contains(new_pin));
}

#[test]
fn mismatched_new_pins_are_asked_again() {
    let (agent, fx) = soft::with_soft(&[]);
    agent.script(&[
        &format!("pin {SENTINEL_PIN}"),
        "pin first-1111",
        "pin other-2222",
        "pin good-3333",
        "pin good-3333",
    ]);
    let mut c = agent.unix();
    assert_eq!(c.call("pin.change", json!({ "token": fx.token })).unwrap()["changed"], true);
    let d = agent.dialogs();
    assert_eq!(d.len(), 5);
    assert!(d[3]["error"].as_str().unwrap().contains("differ"));
}

#[test]
fn insertion_and_removal_are_pushed_to_subscribers() {
    let (agent, fx) = soft::with_soft(&[]);
    let mut c = agent.unix();
    c.call("events.subscribe", json!({})).unwrap();
    let second = soft::soft_token(&soft::soft_dir(&agent), "Bob", ukey_api::KeyAlgorithm::P256, 3);
    let ev = c.next_notification().unwrap();
    assert_eq!(ev["params"]["event"]["type"], "carrier.inserted", "{ev}");
    assert_eq!(ev["params"]["event"]["token"]["id"], second.token);
    assert_eq!(ev["params"]["event"]["token"]["software"], true);
    std::fs::remove_file(soft::soft_dir(&agent).join(format!("{}.token", fx.serial))).unwrap();
    let ev = c.next_notification().unwrap();
    assert_eq!(ev["params"]["event"]["type"], "carrier.removed", "{ev}");
    assert_eq!(ev["params"]["event"]["token"], fx.token);
    let tokens = c.call("tokens.list", json!({})).unwrap();
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 1);
    let e = c.call("sign", json!({ "key": fx.handle, "data": "aGk=", "pin": SENTINEL_PIN })).unwrap_err();
    assert_eq!(e.kind(), "NotFound");
}

#[test]
fn unknown_handles_and_bad_input_are_clear_errors() {
    let (agent, fx) = soft::with_soft(&[]);
    let mut c = agent.unix();
    let e = c.call("sign", json!({ "key": "soft:NOPE#01", "data": "aGk=" })).unwrap_err();
    assert_eq!(e.kind(), "NotFound");
    let e = c.call("sign", json!({ "key": "not-a-handle", "data": "aGk=" })).unwrap_err();
    assert_eq!(e.kind(), "InvalidParams");
    let e = c.call("sign", json!({ "key": fx.handle, "data": "%%%" })).unwrap_err();
    assert_eq!(e.kind(), "InvalidParams");
    let e = c.call("sign", json!({ "key": fx.handle, "digest": "aGk=" })).unwrap_err();
    assert!(e.to_string().contains("32-byte"), "{e}");
    let e = c.call("sign", json!({ "key": fx.handle, "data": "aGk=", "mechanism": "sm2-sm3" })).unwrap_err();
    assert_eq!(e.kind(), "NotSupported");
    let e = c.call("sign", json!({ "key": fx.handle, "data": "aGk=", "format": "pgp" })).unwrap_err();
    assert_eq!(e.kind(), "InvalidParams");
    let _ = kind;
}
