//! Bad devices and broken report streams: every fault gives a clear contract error — never a
//! panic or a hang — and the next operation works again once the device behaves.
//!
//! TEST DOUBLE: the device is the crate's in-process token emulator (`ukey_hid::emulator`),
//! because this machine's kernel has no `/dev/uhid`; it misbehaves on request in the ways a real
//! token or a bad USB link can. Everything above the `HidDevice` trait is the production code.

mod common;

use std::time::Duration;

use common::*;
use ukey_api::{Carrier, Error};
use ukey_hid::emulator::{Faults, VirtualHidToken};
use ukey_hid::exchange::{self, LinkError};
use ukey_hid::framing::{self, MAX_MESSAGE_LEN, Packet, REPORT_LEN, cmd, err};
use ukey_hid::{HidDevice, HidTransport};
use ukey_iso7816::{ApduPipe, CardTransport};

/// A card that answers every APDU with 300 bytes (six reports) and 90 00.
fn long_answer_token(path: &str) -> VirtualHidToken {
    VirtualHidToken::new(path, |apdu: &[u8]| {
        let mut answer: Vec<u8> = (0..300u32).map(|i| (i as u8) ^ apdu.first().copied().unwrap_or(0)).collect();
        answer.extend_from_slice(&[0x90, 0x00]);
        answer
    })
}

fn expected_answer() -> Vec<u8> {
    let mut answer: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    answer.extend_from_slice(&[0x90, 0x00]);
    answer
}

/// One raw APDU in one transaction.
fn send(transport: &mut HidTransport, apdu: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = None;
    transport.transaction(&mut |pipe: &mut dyn ApduPipe| {
        out = Some(pipe.transmit(apdu)?);
        Ok(())
    })?;
    Ok(out.expect("transaction ran"))
}

const APDU: [u8; 5] = [0x00, 0xCA, 0x00, 0x00, 0x00];

/// Sends with `faults` set, checks the error, then checks the device works again without them.
fn fails_then_recovers(faults: Faults, check: impl FnOnce(&Error)) {
    let token = long_answer_token("emulated:faulty");
    let mut transport = transport(&token);
    assert_eq!(send(&mut transport, &APDU).expect("healthy device"), expected_answer());
    token.set_faults(faults.clone());
    let err = send(&mut transport, &APDU).expect_err(&format!("{faults:?} must fail"));
    check(&err);
    token.set_faults(Faults::default());
    assert_eq!(send(&mut transport, &APDU).expect("works again after the fault"), expected_answer());
}

#[test]
fn lost_continuation_packet_is_a_clear_error() {
    fails_then_recovers(Faults { drop_continuation: Some(1), ..Faults::default() }, |e| {
        assert!(matches!(e, Error::Device(m) if m.contains("packet 2 arrived where packet 1 was due")), "{e}");
    });
}

#[test]
fn reordered_continuation_packets_are_a_clear_error() {
    fails_then_recovers(Faults { swap_continuations: true, ..Faults::default() }, |e| {
        assert!(matches!(e, Error::Device(m) if m.contains("lost or reordered")), "{e}");
    });
}

#[test]
fn reports_of_the_wrong_size_are_a_clear_error() {
    for len in [32, 8, 0] {
        fails_then_recovers(Faults { report_len: Some(len), ..Faults::default() }, |e| {
            let expected = format!("{len}-byte HID report where 64 bytes are expected");
            assert!(matches!(e, Error::Device(m) if m.contains(&expected)), "{e}");
        });
    }
}

#[test]
fn length_field_longer_than_the_data_times_out_with_the_reason() {
    // The answer is 302 bytes; the device claims 400 and stops after 302.
    fails_then_recovers(Faults { announce_len: Some(400), ..Faults::default() }, |e| {
        assert!(matches!(e, Error::Timeout(m) if m.contains("announced a 400-byte answer")), "{e}");
    });
}

#[test]
fn length_field_beyond_the_framing_maximum_is_a_clear_error() {
    fails_then_recovers(Faults { announce_len: Some(0xFFFF), ..Faults::default() }, |e| {
        assert!(matches!(e, Error::Device(m) if m.contains("65535-byte message") && m.contains("7609")), "{e}");
    });
}

#[test]
fn silent_device_times_out() {
    fails_then_recovers(Faults { silent: true, ..Faults::default() }, |e| {
        assert!(matches!(e, Error::Timeout(m) if m.contains("did not answer")), "{e}");
    });
}

#[test]
fn answer_on_a_wrong_channel_is_ignored() {
    // Packets of another channel are another program's: never taken as our answer.
    fails_then_recovers(Faults { answer_on_other_channel: true, ..Faults::default() }, |e| {
        assert!(matches!(e, Error::Timeout(_)), "{e}");
    });
}

#[test]
fn device_errors_are_reported_by_name() {
    fails_then_recovers(Faults { error: Some(err::INVALID_CMD), ..Faults::default() }, |e| {
        assert!(matches!(e, Error::Device(m) if m.contains("0x01 (invalid command)")), "{e}");
    });
    fails_then_recovers(Faults { error: Some(err::CHANNEL_BUSY), ..Faults::default() }, |e| {
        assert!(matches!(e, Error::Busy(_)), "{e}");
    });
}

#[test]
fn keepalives_and_other_programs_packets_are_skipped() {
    let token = long_answer_token("emulated:chatty");
    let mut transport = transport(&token);
    token.set_faults(Faults { keepalives: 5, foreign_packets: true, ..Faults::default() });
    assert_eq!(send(&mut transport, &APDU).expect("answer despite the noise"), expected_answer());
}

#[test]
fn a_forgotten_channel_is_reallocated_and_the_apdu_sent_once() {
    let token = long_answer_token("emulated:forgetful");
    let mut transport = transport(&token);
    send(&mut transport, &APDU).expect("first");
    token.set_faults(Faults { forget_channels_once: true, ..Faults::default() });
    let before = token.apdus();
    assert_eq!(send(&mut transport, &APDU).expect("recovered"), expected_answer());
    assert_eq!(token.apdus(), before + 1, "the card executed the APDU exactly once");
}

#[test]
fn device_removed_during_a_transfer_is_token_removed() {
    // Gone after two of the six answer reports.
    let token = long_answer_token("emulated:yanked");
    let mut transport = transport(&token);
    send(&mut transport, &APDU).expect("first");
    token.set_faults(Faults { unplug_after_reports: Some(2), ..Faults::default() });
    assert!(matches!(send(&mut transport, &APDU), Err(Error::TokenRemoved)));
    // And it stays gone.
    assert!(matches!(send(&mut transport, &APDU), Err(Error::TokenRemoved)));
}

#[test]
fn piv_carrier_sees_token_removed_mid_operation() {
    let piv = SharedPiv::new();
    let token = piv.token("emulated:piv-yanked");
    let carrier = carrier(&token);
    carrier.objects().expect("objects while plugged in");
    token.set_faults(Faults { unplug_after_reports: Some(3), ..Faults::default() });
    let err = carrier.objects().unwrap_err();
    assert!(matches!(err, Error::TokenRemoved), "{err:?}");
    assert!(matches!(carrier.pin_state(), Err(Error::TokenRemoved)));
}

#[test]
fn longest_message_crosses_in_129_reports_each_way() {
    let token = long_answer_token("emulated:ping");
    let mut dev = token.open();
    let cid = exchange::allocate_channel(&mut dev, quick()).expect("channel");
    let payload: Vec<u8> = (0..MAX_MESSAGE_LEN).map(|i| (i % 253) as u8).collect();
    let before = token.reports_in();
    let echoed = exchange::call(&mut dev, cid, cmd::PING, &payload, quick()).expect("ping");
    assert_eq!(echoed, payload);
    assert_eq!(token.reports_in() - before, 129);
    // One byte more does not fit, and nothing is sent.
    let too_long = vec![0u8; MAX_MESSAGE_LEN + 1];
    let e = exchange::call(&mut dev, cid, cmd::PING, &too_long, quick()).unwrap_err();
    assert!(matches!(e, LinkError::Framing(_)), "{e:?}");
    assert_eq!(token.reports_in() - before, 129);
}

#[test]
fn two_programs_on_two_channels_get_their_own_answers() {
    let token = long_answer_token("emulated:shared");
    let mut a = token.open();
    let mut b = token.open();
    let cid_a = exchange::allocate_channel(&mut a, quick()).expect("channel a");
    let cid_b = exchange::allocate_channel(&mut b, quick()).expect("channel b");
    assert_ne!(cid_a, cid_b);
    // Every handle sees every report (as with hidraw): b's answer arrives on a's handle too.
    let answer_b = exchange::call(&mut b, cid_b, cmd::PING, b"for b", quick()).expect("b");
    let answer_a = exchange::call(&mut a, cid_a, cmd::PING, b"for a", quick()).expect("a");
    assert_eq!(answer_a, b"for a");
    assert_eq!(answer_b, b"for b");
}

#[test]
fn concurrent_transports_on_one_device_take_turns() {
    let token = long_answer_token("emulated:threads");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let token = token.clone();
            std::thread::spawn(move || {
                let mut transport = transport(&token);
                for _ in 0..10 {
                    assert_eq!(send(&mut transport, &APDU).expect("answer"), expected_answer());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(token.apdus(), 40);
}

#[test]
fn garbage_injected_between_exchanges_is_survived_by_resync() {
    let token = long_answer_token("emulated:garbage");
    let mut transport = transport(&token);
    send(&mut transport, &APDU).expect("first");
    // A stray continuation packet on every channel (left over from nothing): the next answer
    // is broken by it, the one after that works after resynchronisation.
    let mut stray = vec![0u8; REPORT_LEN];
    stray[..4].copy_from_slice(&0x0100_0001u32.to_be_bytes());
    stray[4] = 3;
    assert!(matches!(Packet::parse(&stray), Ok(Packet::Cont { seq: 3, .. })));
    token.inject(&[stray]);
    let e = send(&mut transport, &APDU).unwrap_err();
    assert!(matches!(&e, Error::Device(m) if m.contains("without the start of a message")), "{e}");
    assert_eq!(send(&mut transport, &APDU).expect("after resync"), expected_answer());
}

#[test]
fn reads_time_out_without_reports() {
    let token = long_answer_token("emulated:quiet");
    let mut dev = token.open();
    assert_eq!(dev.read_report(Duration::from_millis(20)), Ok(None));
    let reports = framing::encode(0x0100_0001, cmd::MSG, &[0; 10]).expect("encode");
    assert_eq!(reports.len(), 1);
}
