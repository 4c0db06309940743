//! HID reports from a token (CTAPHID framing, drivers/hid): whatever a device sends, packet
//! parsing, message reassembly and the host side of an exchange end in a message or an error,
//! never a panic or an unbounded loop; a message ukey frames reassembles to itself.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ukey_hid::exchange::{self, Timeouts};
use ukey_hid::framing::{self, InitResponse, MAX_MESSAGE_LEN, Packet, REPORT_LEN, Reassembler, Step, cmd};
use ukey_hid::{DeviceError, HidDevice};

/// The channel the host side listens to; seeds carry answers on it.
const CID: u32 = 0x0102_0304;

/// A device whose input reports are the fuzz input cut into 64-byte reports (the last one may be
/// short); when they run out the device counts as unplugged, so every prefix is a removal.
struct ReplayDevice<'a> {
    reports: std::slice::Chunks<'a, u8>,
}

impl HidDevice for ReplayDevice<'_> {
    fn write_report(&mut self, report: &[u8]) -> Result<(), DeviceError> {
        assert_eq!(report.len(), REPORT_LEN, "ukey writes whole reports only");
        Ok(())
    }

    fn read_report(&mut self, _timeout: Duration) -> Result<Option<Vec<u8>>, DeviceError> {
        self.reports.next().map(|r| Some(r.to_vec())).ok_or(DeviceError::Gone)
    }

    fn path(&self) -> &str {
        "/fuzz/hidraw"
    }
}

fuzz_target!(|data: &[u8]| {
    // Every report on its own.
    for report in data.chunks(REPORT_LEN) {
        if let Ok(packet) = Packet::parse(report) {
            assert_eq!(report.len(), REPORT_LEN);
            let _ = format!("{packet:?}");
        }
    }
    let _ = InitResponse::parse(data);
    if let Some(init) = InitResponse::parse(data) {
        assert_eq!(InitResponse::parse(&init.encode()), Some(init));
    }

    // Reassembly on both sides: whatever completes is bounded and on the right channel.
    let mut host = Reassembler::for_channel(CID);
    let mut device = Reassembler::any_channel();
    for report in data.chunks(REPORT_LEN) {
        if let Ok(Step::Complete(m)) = host.push(report) {
            assert_eq!(m.cid, CID);
            assert!(m.data.len() <= MAX_MESSAGE_LEN);
            assert!(m.cmd & 0x80 != 0);
        }
        if let Ok(Step::Complete(m)) = device.push(report) {
            assert!(m.data.len() <= MAX_MESSAGE_LEN);
        }
    }

    // The host side of an exchange, the device answering with the fuzz input.
    let timeouts = Timeouts { idle: Duration::from_secs(5), total: Duration::from_secs(5), lock: Duration::ZERO };
    let mut dev = ReplayDevice { reports: data.chunks(REPORT_LEN) };
    if let Ok(answer) = exchange::call(&mut dev, CID, cmd::MSG, &[0x00, 0xA4, 0x04, 0x00], timeouts) {
        assert!(answer.len() <= MAX_MESSAGE_LEN);
    }

    // Round trip: the input as a message ukey sends.
    let payload = data.get(..data.len().min(MAX_MESSAGE_LEN)).unwrap_or_default();
    let reports = framing::encode(CID, cmd::MSG, payload).expect("a message within the limit frames");
    assert_eq!(reports.len(), 1 + payload.len().saturating_sub(framing::INIT_DATA_LEN).div_ceil(framing::CONT_DATA_LEN));
    let mut r = Reassembler::for_channel(CID);
    let mut done = None;
    for (i, report) in reports.iter().enumerate() {
        match r.push(report).expect("reports ukey frames reassemble") {
            Step::Complete(m) => {
                assert_eq!(i + 1, reports.len(), "complete only at the last report");
                done = Some(m);
            }
            Step::Pending { .. } => assert!(i + 1 < reports.len()),
            Step::OtherChannel => panic!("our own channel was ignored"),
        }
    }
    let m = done.expect("the message completes");
    assert_eq!((m.cid, m.cmd, m.data.as_slice()), (CID, cmd::MSG, payload));
});
