//! Property tests of the CTAPHID framing: every message survives encoding and reassembly,
//! whatever other channels interleave; arbitrary reports never panic the reassembler; a lost
//! packet is always an error, never a wrong message.

use proptest::prelude::*;
use ukey_hid::framing::{
    CONT_DATA_LEN, FramingError, INIT_DATA_LEN, MAX_MESSAGE_LEN, REPORT_LEN, Reassembler, Step, encode,
};

fn reassemble(cid: u32, reports: &[Vec<u8>]) -> Result<Option<Vec<u8>>, FramingError> {
    let mut r = Reassembler::for_channel(cid);
    for report in reports {
        if let Step::Complete(m) = r.push(report)? {
            return Ok(Some(m.data));
        }
    }
    Ok(None)
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=INIT_DATA_LEN + 2 * CONT_DATA_LEN),
        proptest::collection::vec(any::<u8>(), 0..=MAX_MESSAGE_LEN),
    ]
}

proptest! {
    #[test]
    fn encode_then_reassemble_is_identity(cid in any::<u32>(), command in 0x80u8..=0xFF, data in payload()) {
        let reports = encode(cid, command, &data).unwrap();
        prop_assert_eq!(reports.len(), 1 + data.len().saturating_sub(INIT_DATA_LEN).div_ceil(CONT_DATA_LEN));
        prop_assert!(reports.iter().all(|r| r.len() == REPORT_LEN));
        let reports: Vec<Vec<u8>> = reports.iter().map(|r| r.to_vec()).collect();
        prop_assert_eq!(reassemble(cid, &reports).unwrap(), Some(data));
    }

    #[test]
    fn other_channels_interleaved_change_nothing(
        data in proptest::collection::vec(any::<u8>(), 0..1000),
        noise in proptest::collection::vec(proptest::collection::vec(any::<u8>(), REPORT_LEN), 0..20),
        positions in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let cid = 0x0102_0304;
        let mut reports: Vec<Vec<u8>> = encode(cid, 0x83, &data).unwrap().iter().map(|r| r.to_vec()).collect();
        for (mut packet, at) in noise.into_iter().zip(positions) {
            // Make sure the noise is on another channel.
            if packet[..4] == cid.to_be_bytes() {
                packet[0] ^= 0xFF;
            }
            let index = at.index(reports.len() + 1);
            reports.insert(index, packet);
        }
        prop_assert_eq!(reassemble(cid, &reports).unwrap(), Some(data));
    }

    #[test]
    fn arbitrary_reports_never_panic_and_complete_messages_have_their_length(
        reports in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), REPORT_LEN),
                proptest::collection::vec(any::<u8>(), 0..100),
            ],
            0..50,
        ),
    ) {
        for mut r in [Reassembler::for_channel(0), Reassembler::any_channel()] {
            for report in &reports {
                if let Ok(Step::Complete(m)) = r.push(report) {
                    prop_assert!(m.data.len() <= MAX_MESSAGE_LEN);
                    prop_assert!(m.cmd & 0x80 != 0);
                }
            }
        }
    }

    #[test]
    fn a_lost_packet_is_an_error_or_an_incomplete_message(
        data in proptest::collection::vec(any::<u8>(), INIT_DATA_LEN + 1..=MAX_MESSAGE_LEN),
        lost in any::<prop::sample::Index>(),
    ) {
        let cid = 7;
        let mut reports: Vec<Vec<u8>> = encode(cid, 0x83, &data).unwrap().iter().map(|r| r.to_vec()).collect();
        reports.remove(lost.index(reports.len()));
        // Never the wrong message: either an error, or still waiting for the missing data.
        prop_assert!(matches!(reassemble(cid, &reports), Err(_) | Ok(None)));
    }
}
