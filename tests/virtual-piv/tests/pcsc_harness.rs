//! The harness end to end through pcscd and vpcd: insertion and removal seen by PC/SC, reader
//! leases, the card process with a state file, and the drop fault.

use std::ffi::CString;
use std::time::Duration;

use pcsc::{Context, Protocols, Scope, ShareMode};
use ukey_vpiv::harness::{ReaderLease, VPCD_READERS};
use ukey_vpiv::{CardConfig, FaultMode, FaultPlan, PIV_AID, VirtualPiv, apdu, tlv};

const LEASE_TIMEOUT: Duration = Duration::from_secs(180);

fn transmit(card: &pcsc::Card, raw: &[u8]) -> Result<(Vec<u8>, u16), pcsc::Error> {
    let mut buf = vec![0u8; 66_000];
    let resp = card.transmit(raw, &mut buf)?;
    // A card pulled out mid-command may leave vpcd answering nothing at all.
    let (data, sw) = resp.split_at_checked(resp.len().wrapping_sub(2)).ok_or(pcsc::Error::RemovedCard)?;
    Ok((data.to_vec(), u16::from_be_bytes([sw[0], sw[1]])))
}

fn connect(reader: &str) -> pcsc::Card {
    let ctx = Context::establish(Scope::User).expect("pcscd answers");
    ctx.connect(&CString::new(reader).unwrap(), ShareMode::Shared, Protocols::ANY).expect("card connects")
}

fn select() -> Vec<u8> {
    apdu::build(0, 0xA4, 0x04, 0x00, &PIV_AID, Some(256))
}

#[test]
fn an_inserted_card_answers_through_pcsc_and_removal_is_seen() {
    let lease = ReaderLease::acquire_any(LEASE_TIMEOUT).expect("lease a vpcd reader");
    let inserted = lease.insert(VirtualPiv::new(CardConfig::default()).unwrap()).expect("insert");
    eprintln!("insertion seen by PC/SC after {:?}", inserted.insert_latency);
    assert!(inserted.insert_latency < Duration::from_secs(10));
    {
        let card = connect(lease.reader_name());
        let (status_names, atr) = {
            let status = card.status2_owned().expect("status");
            (
                status.reader_names().iter().map(|n| n.to_string_lossy().into_owned()).collect::<Vec<_>>(),
                status.atr().to_vec(),
            )
        };
        assert_eq!(status_names, vec![lease.reader_name().to_string()]);
        assert_eq!(atr, ukey_vpiv::ATR);
        let (apt, sw) = transmit(&card, &select()).unwrap();
        assert_eq!(sw, 0x9000);
        assert_eq!(apt.first(), Some(&0x61));
        let (disc, sw) = transmit(&card, &apdu::build(0, 0xCB, 0x3F, 0xFF, &[0x5C, 0x01, 0x7E], Some(256))).unwrap();
        assert_eq!(sw, 0x9000);
        assert_eq!(tlv::read(&disc).unwrap().0.tag, 0x7E);
    }
    assert_eq!(inserted.slot().apdu_count, 2);
    let (_card, removal) = inserted.remove().expect("remove");
    eprintln!("removal seen by PC/SC after {removal:?}");
    assert!(lease.wait_for_card(false, Duration::ZERO).is_ok(), "reader is empty");
}

#[test]
fn two_leases_get_different_readers() {
    let first = ReaderLease::acquire_any(LEASE_TIMEOUT).expect("first lease");
    let second = ReaderLease::acquire_any(LEASE_TIMEOUT).expect("second lease");
    assert_ne!(first.reader(), second.reader());
    assert!(VPCD_READERS.contains(&first.reader()) && VPCD_READERS.contains(&second.reader()));
}

#[test]
fn a_removed_card_can_be_inserted_again_with_its_state() {
    let lease = ReaderLease::acquire_any(LEASE_TIMEOUT).expect("lease");
    let inserted = lease.insert(VirtualPiv::new(CardConfig::default()).unwrap()).expect("insert");
    {
        let card = connect(lease.reader_name());
        transmit(&card, &select()).unwrap();
        let wrong = apdu::build(0, 0x20, 0x00, 0x80, b"000000\xFF\xFF", None);
        assert_eq!(transmit(&card, &wrong).unwrap().1, 0x63C2);
    }
    let (shared, _) = inserted.remove().expect("remove");
    let again = lease.insert_shared(shared).expect("insert again");
    let card = connect(lease.reader_name());
    transmit(&card, &select()).unwrap();
    let status = apdu::build(0, 0x20, 0x00, 0x80, &[], None);
    assert_eq!(transmit(&card, &status).unwrap().1, 0x63C2, "the retry counter survived removal");
    drop(card);
    again.remove().expect("remove");
}

#[test]
fn the_card_process_keeps_its_state_file_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("card.json");
    let state_arg = state.to_str().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_ukey-vpiv"));
    let lease = ReaderLease::acquire_any(LEASE_TIMEOUT).expect("lease");
    let process = lease.insert_process(exe, &["--state-file", state_arg, "--pin-tries", "5"]).expect("start card");
    {
        let card = connect(lease.reader_name());
        transmit(&card, &select()).unwrap();
        let wrong = apdu::build(0, 0x20, 0x00, 0x80, b"999999\xFF\xFF", None);
        assert_eq!(transmit(&card, &wrong).unwrap().1, 0x63C4);
    }
    let status = process.remove().expect("stop card");
    assert!(status.success(), "SIGTERM ends the card process cleanly: {status:?}");
    assert!(state.exists());

    let process = lease.insert_process(exe, &["--state-file", state_arg]).expect("restart card");
    {
        let card = connect(lease.reader_name());
        transmit(&card, &select()).unwrap();
        let status = apdu::build(0, 0x20, 0x00, 0x80, &[], None);
        assert_eq!(transmit(&card, &status).unwrap().1, 0x63C4, "same card, same counter");
    }
    assert!(process.remove().expect("stop").success());
}

#[test]
fn a_drop_fault_pulls_the_card_out_mid_command() {
    let lease = ReaderLease::acquire_any(LEASE_TIMEOUT).expect("lease");
    let card = VirtualPiv::new(CardConfig::default()).unwrap();
    let inserted = lease.insert_with_faults(card, FaultPlan::at(FaultMode::Drop, 2)).expect("insert");
    let pcsc_card = connect(lease.reader_name());
    assert_eq!(transmit(&pcsc_card, &select()).unwrap().1, 0x9000);
    let second = transmit(&pcsc_card, &apdu::build(0, 0xCB, 0x3F, 0xFF, &[0x5C, 0x01, 0x7E], Some(256)));
    eprintln!("the APDU that met the drop fault: {second:?}");
    assert!(second.is_err(), "the second APDU finds no card: {second:?}");
    lease.wait_for_card(false, Duration::from_secs(10)).expect("PC/SC sees the card gone");
    assert!(inserted.is_disconnected());
    drop(pcsc_card);
    inserted.remove().expect("clean up");
}

#[test]
fn an_exclusive_lease_restarts_pcscd_and_cards_work_again() {
    let lease = ReaderLease::acquire_any_exclusive(LEASE_TIMEOUT).expect("exclusive lease");
    lease.stop_pcscd().expect("stop pcscd");
    assert!(!ukey_vpiv::harness::pcscd::answers(), "pcscd is gone");
    assert!(ukey_vpiv::harness::pcscd::running_pid().is_none());
    lease.start_pcscd().expect("start pcscd");
    assert!(ukey_vpiv::harness::pcscd::answers());
    let inserted = lease.insert(VirtualPiv::new(CardConfig::default()).unwrap()).expect("insert after restart");
    let card = connect(lease.reader_name());
    assert_eq!(transmit(&card, &select()).unwrap().1, 0x9000);
    drop(card);
    inserted.remove().expect("remove");
}

#[test]
fn a_shared_lease_may_not_stop_pcscd() {
    let lease = ReaderLease::acquire_any(LEASE_TIMEOUT).expect("lease");
    assert!(matches!(lease.stop_pcscd(), Err(ukey_vpiv::harness::HarnessError::NotExclusive)));
}
