//! Persistence of the card state, factory settings validation, and the fault plans.

mod support;

use support::*;
use ukey_vpiv::faults::FaultAction;
use ukey_vpiv::mgmt::MgmtAlgorithm;
use ukey_vpiv::{CardConfig, FaultMode, FaultPlan, VirtualPiv, tlv};
use zeroize::Zeroizing;

#[test]
fn a_persisted_card_keeps_pins_keys_and_objects_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let template = {
        let mut card = VirtualPiv::open(&path, CardConfig::default()).unwrap();
        select(&mut card);
        assert_eq!(mgmt_auth(&mut card, MgmtAlgorithm::Tdes, &DEFAULT_MGMT), 0x9000);
        let (template, sw) = generate(&mut card, 0x9A, 0x11);
        assert_eq!(sw, 0x9000);
        generate(&mut card, 0x9C, 0x07);
        assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x05], &tlv::encode(0x70, &[0x30, 0x01, 0x00])), 0x9000);
        assert_eq!(verify(&mut card, b"000000"), 0x63C2);
        let mut puk = pin_block(b"00000000");
        puk.extend(pin_block(b"123456"));
        assert_eq!(send(&mut card, 0, 0x2C, 0x00, 0x80, &puk, None).1, 0x63C2);
        template
    };
    // Reopening ignores the config given: the file wins.
    let other = CardConfig { pin: Zeroizing::new(b"999999".to_vec()), ..CardConfig::default() };
    let mut card = VirtualPiv::open(&path, other).unwrap();
    select(&mut card);
    assert_eq!(card.pin_tries_left(), 2);
    assert_eq!(card.puk_tries_left(), 2);
    assert_eq!(card.public_key_template(0x9A), Some(template));
    assert_eq!(card.key_algorithm(0x9C), Some(ukey_vpiv::KeyAlgorithm::Rsa2048));
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x05]).1, 0x9000);
    assert_eq!(verify(&mut card, b"123456"), 0x9000);
    assert_eq!(sign(&mut card, 0x11, 0x9A, &[1; 32]).1, 0x9000, "the reloaded key signs");
    assert!(!card.mgmt_authenticated(), "the security status is volatile");
}

#[test]
fn a_broken_state_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    std::fs::write(&path, "{ not json").unwrap();
    let err = VirtualPiv::open(&path, CardConfig::default()).err().expect("refused");
    assert!(err.to_string().contains("not valid"), "{err}");
}

#[test]
fn factory_secrets_never_show_in_debug_output() {
    let config = CardConfig::default();
    let shown = format!("{config:?}");
    assert!(shown.contains("redacted") && !shown.contains("313233343536"), "{shown}");
}

#[test]
fn factory_settings_are_validated() {
    let bad = [
        CardConfig { pin: Zeroizing::new(b"12345".to_vec()), ..CardConfig::default() },
        CardConfig { pin: Zeroizing::new(b"12345a".to_vec()), ..CardConfig::default() },
        CardConfig { puk: Zeroizing::new(b"123456789".to_vec()), ..CardConfig::default() },
        CardConfig { pin_tries: 0, ..CardConfig::default() },
        CardConfig { pin_tries: 16, ..CardConfig::default() },
        CardConfig { mgmt_algorithm: MgmtAlgorithm::Aes256, ..CardConfig::default() },
    ];
    for config in bad {
        assert!(VirtualPiv::new(config).is_err());
    }
}

#[test]
fn fault_plans_parse_and_apply() {
    assert_eq!("none".parse::<FaultPlan>().unwrap(), FaultPlan::none());
    assert_eq!("drop@5".parse::<FaultPlan>().unwrap(), FaultPlan::at(FaultMode::Drop, 5));
    assert_eq!("bogus-sw".parse::<FaultPlan>().unwrap(), FaultPlan::at(FaultMode::BogusStatus, 1));
    assert!("drop@0".parse::<FaultPlan>().is_err());
    assert!("melt".parse::<FaultPlan>().is_err());
    assert_eq!(FaultPlan::at(FaultMode::Drop, 2).to_string(), "drop@2");

    let honest = vec![0x53, 0x04, 0x70, 0x02, 0x30, 0x00, 0x90, 0x00];
    let plan = FaultPlan::at(FaultMode::TruncatedTlv, 2);
    assert_eq!(plan.apply(1, honest.clone()), FaultAction::Answer(honest.clone()), "before the fault");
    assert_eq!(plan.apply(2, honest.clone()), FaultAction::Answer(vec![0x53, 0x04, 0x70, 0x90, 0x00]));
    let FaultAction::Answer(wrong) = FaultPlan::at(FaultMode::WrongLengths, 1).apply(1, honest.clone()) else {
        panic!("answers");
    };
    assert_eq!(wrong[1], 0x7F, "length claims more than follows");
    assert_eq!(wrong.len(), honest.len());
    let FaultAction::Answer(endless) = FaultPlan::at(FaultMode::EndlessGetResponse, 1).apply(1, vec![0x90, 0x00])
    else {
        panic!("answers");
    };
    assert_eq!(&endless[endless.len() - 2..], &[0x61, 0x10]);
    assert_eq!(FaultPlan::at(FaultMode::BogusStatus, 1).apply(9, honest), FaultAction::Answer(vec![0x12, 0x34]));
    assert_eq!(FaultPlan::at(FaultMode::Drop, 1).apply(1, vec![0x90, 0x00]), FaultAction::Drop);
}
