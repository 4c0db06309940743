//! The directory store: creating, finding, listing and deleting tokens, their identity, the
//! store location rules, and hot-plug events.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ukey_api::{Carrier, CarrierEvent, CarrierKind, Driver, Error, PinRole};
use ukey_soft::SoftDriver;

#[test]
fn a_new_token_declares_itself_a_software_carrier() {
    let fx = Fixture::new();
    let token = fx.driver.create_token("alice", &pin(SO_PIN), &pin(USER_PIN)).unwrap();
    let info = token.info();
    assert_eq!(info.kind, CarrierKind::Soft);
    assert!(info.software, "the soft token is never a hardware carrier");
    assert!(info.initialized && !info.read_only);
    assert_eq!((info.manufacturer.as_str(), info.model.as_str()), ("ukey", "Software token"));
    assert_eq!(info.label, "alice");
    assert_eq!(info.serial.len(), 16);
    assert!(info.serial.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(info.id.as_str(), format!("soft:{}", info.serial));
    let caps = token.capabilities().unwrap();
    assert!(caps.sign.iter().all(|(_, form)| *form == ukey_api::InputForm::Digest));
    // Every mechanism the contract has: SM2-SM3, ECDSA P-256/P-384, RSA PKCS#1 (SHA-256 and over
    // a DigestInfo) and PSS.
    let kinds: Vec<_> = caps.sign.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(kinds.len(), ukey_api::mechanism::MechanismKind::ALL.len(), "{kinds:?}");
    assert!(ukey_api::mechanism::MechanismKind::ALL.iter().all(|k| kinds.contains(k)), "{kinds:?}");
    assert_eq!(caps.pin_length, Some((4, 64)));
}

#[test]
fn store_files_are_private_and_several_tokens_live_side_by_side() {
    let fx = Fixture::new();
    let a = fx.token("one");
    let b = fx.token("two");
    assert_ne!(a.info().serial, b.info().serial);
    let dir_mode = std::fs::metadata(fx.store_dir()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let file_mode = std::fs::metadata(a.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(file_mode, 0o600);
    let mut labels: Vec<String> = fx.driver.carriers().unwrap().iter().map(|c| c.info().label.clone()).collect();
    labels.sort();
    assert_eq!(labels, ["one", "two"]);
    assert_eq!(fx.driver.token("two").unwrap().info().serial, b.info().serial);
    assert_eq!(fx.driver.token(&a.info().serial.to_lowercase()).unwrap().info().label, "one");
    assert!(matches!(fx.driver.token("three"), Err(Error::NotFound(_))));
}

#[test]
fn labels_are_unique_and_checked() {
    let fx = Fixture::new();
    fx.token("same");
    let err = fx.driver.create_token("same", &pin(SO_PIN), &pin(USER_PIN)).err().unwrap();
    assert!(matches!(err, Error::InvalidInput(_)) && err.to_string().contains("already exists"), "{err}");
    for bad in ["", "   ", "tab\there", "this label is far too long for a token label"] {
        let err = fx.driver.create_token(bad, &pin(SO_PIN), &pin(USER_PIN)).err().unwrap();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad:?}: {err:?}");
    }
}

#[test]
fn a_missing_store_has_no_tokens_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let driver = SoftDriver::open(dir.path().join("nowhere"));
    assert!(driver.carriers().unwrap().is_empty());
    let status = driver.status();
    assert!(status[0].ok && status[0].message.contains("ukey token init --soft"), "{status:?}");
}

#[test]
fn deleting_a_token_needs_its_so_pin() {
    let fx = Fixture::new();
    let token = fx.token("doomed");
    let serial = token.info().serial.clone();
    let err = fx.driver.delete_token("doomed", &user()).unwrap_err();
    assert!(matches!(err, Error::WrongPin { role: PinRole::So, .. }), "{err:?}");
    assert!(token.path().exists());
    fx.driver.delete_token(&serial, &so()).unwrap();
    assert!(!token.path().exists());
    assert!(matches!(token.pin_state(), Err(Error::TokenRemoved)));
    assert!(fx.driver.carriers().unwrap().is_empty());
}

#[test]
fn watch_reports_tokens_created_changed_and_deleted() {
    let fx = Fixture::new();
    let first = fx.token("present");
    let events: Arc<Mutex<Vec<CarrierEvent>>> = Arc::default();
    let sink_events = events.clone();
    let watch = fx.driver.watch(Arc::new(move |e| sink_events.lock().unwrap().push(e))).unwrap();
    let has = |pred: &dyn Fn(&CarrierEvent) -> bool| events.lock().unwrap().iter().any(pred);
    assert!(has(&|e| matches!(e, CarrierEvent::Inserted { info } if info.serial == first.info().serial)));

    let second = fx.token("arrives");
    wait_for("the Inserted event", Duration::from_secs(10), || {
        has(&|e| matches!(e, CarrierEvent::Inserted { info } if info.label == "arrives"))
    });
    // A PIN check rewrites the file but changes no object: no event for it.
    second.verify_pin(PinRole::User, &user()).unwrap();
    second
        .write_data(
            &ukey_api::DataObjectWrite {
                label: "tag".into(),
                application: "t".into(),
                id: None,
                value: ukey_api::SecretBytes::new(b"v".to_vec()),
                private: false,
            },
            &user(),
        )
        .unwrap();
    let second_id = second.info().id.clone();
    wait_for("the Changed event", Duration::from_secs(10), || {
        has(&|e| matches!(e, CarrierEvent::Changed { id } if *id == second_id))
    });
    let changes = events.lock().unwrap().iter().filter(|e| matches!(e, CarrierEvent::Changed { .. })).count();
    assert_eq!(changes, 1, "only the object change is reported: {:?}", events.lock().unwrap());

    fx.driver.delete_token("present", &so()).unwrap();
    let first_id = first.info().id.clone();
    wait_for("the Removed event", Duration::from_secs(10), || {
        has(&|e| matches!(e, CarrierEvent::Removed { id } if *id == first_id))
    });
    drop(watch);
    let count = events.lock().unwrap().len();
    fx.token("after-drop");
    // The watcher thread was joined on drop, so nothing can arrive any more.
    assert_eq!(events.lock().unwrap().len(), count);
}
