//! The CTAPHID packet framing (FIDO CTAP 2.1 §11.2.4) that HID tokens use to carry messages in
//! fixed-size HID reports, and that ukey uses to carry ISO 7816 APDUs (in `MSG` messages, as
//! U2F carries its APDUs). Pure code: no I/O, so it can be tested exhaustively and fuzzed.
//!
//! ```text
//! init packet          CID(4) CMD(1, bit 7 set) BCNTH(1) BCNTL(1) DATA(57)
//! continuation packet  CID(4) SEQ(1, 0..=127)                     DATA(59)
//! ```
//!
//! A message of `BCNT` bytes is one init packet followed by as many continuation packets as its
//! data needs, numbered 0, 1, 2... Every report is exactly [`REPORT_LEN`] bytes; the unused tail
//! of the last packet is zero. The largest message is 57 + 128 × 59 = [`MAX_MESSAGE_LEN`]
//! bytes. A channel id (CID) is allocated by an `INIT` exchange on the broadcast channel with an
//! 8-byte nonce; packets carrying another CID belong to another program and are ignored.
//!
//! [`Reassembler`] turns reports back into a message and says precisely what is wrong with a bad
//! stream: a report of the wrong size, a length above the maximum, a lost or reordered
//! continuation packet, a new message starting before the previous one ended.

use std::fmt;

use ukey_api::{Error, Result};
use ukey_catalog::HidFraming;

/// Size of every HID report of the framing (full-speed USB interrupt endpoint).
pub const REPORT_LEN: usize = 64;
/// The broadcast channel, on which `INIT` allocates a channel.
pub const BROADCAST_CID: u32 = 0xFFFF_FFFF;
/// Header bytes of an init packet: CID, CMD, BCNTH, BCNTL.
pub const INIT_HEADER_LEN: usize = 7;
/// Header bytes of a continuation packet: CID, SEQ.
pub const CONT_HEADER_LEN: usize = 5;
/// Data bytes in an init packet.
pub const INIT_DATA_LEN: usize = REPORT_LEN - INIT_HEADER_LEN;
/// Data bytes in a continuation packet.
pub const CONT_DATA_LEN: usize = REPORT_LEN - CONT_HEADER_LEN;
/// Highest continuation sequence number.
pub const MAX_SEQ: u8 = 0x7F;
/// Largest message the framing can carry.
pub const MAX_MESSAGE_LEN: usize = INIT_DATA_LEN + (MAX_SEQ as usize + 1) * CONT_DATA_LEN;
/// Length of the `INIT` nonce.
pub const NONCE_LEN: usize = 8;
/// Length of the `INIT` response: nonce, CID, protocol version, device version (3), capabilities.
pub const INIT_RESPONSE_LEN: usize = NONCE_LEN + 4 + 1 + 3 + 1;

/// CTAPHID commands (with bit 7 set, as they appear on the wire).
pub mod cmd {
    /// Echo the data back.
    pub const PING: u8 = 0x81;
    /// Carry an APDU (U2F) — ukey carries any ISO 7816 APDU in it.
    pub const MSG: u8 = 0x83;
    /// Lock the device to one channel.
    pub const LOCK: u8 = 0x84;
    /// Allocate a channel, or resynchronise an existing one.
    pub const INIT: u8 = 0x86;
    /// Blink the device.
    pub const WINK: u8 = 0x88;
    /// CBOR (CTAP2) request.
    pub const CBOR: u8 = 0x90;
    /// Cancel the outstanding request.
    pub const CANCEL: u8 = 0x91;
    /// The device is still working on the request (or waits for a touch).
    pub const KEEPALIVE: u8 = 0xBB;
    /// The request failed; one byte of error code follows.
    pub const ERROR: u8 = 0xBF;
}

/// CTAPHID error codes (data of an `ERROR` message).
pub mod err {
    /// The command is not known.
    pub const INVALID_CMD: u8 = 0x01;
    /// A parameter is wrong.
    pub const INVALID_PAR: u8 = 0x02;
    /// The length field is wrong.
    pub const INVALID_LEN: u8 = 0x03;
    /// A continuation packet came out of sequence.
    pub const INVALID_SEQ: u8 = 0x04;
    /// A message was not completed in time.
    pub const MSG_TIMEOUT: u8 = 0x05;
    /// Another channel is using the device.
    pub const CHANNEL_BUSY: u8 = 0x06;
    /// A LOCK by another channel is in force.
    pub const LOCK_REQUIRED: u8 = 0x0A;
    /// The channel id is not allocated.
    pub const INVALID_CHANNEL: u8 = 0x0B;
    /// Anything else.
    pub const OTHER: u8 = 0x7F;
}

/// The name of a CTAPHID error code, for messages.
pub fn error_name(code: u8) -> &'static str {
    match code {
        err::INVALID_CMD => "invalid command",
        err::INVALID_PAR => "invalid parameter",
        err::INVALID_LEN => "invalid length",
        err::INVALID_SEQ => "invalid sequence",
        err::MSG_TIMEOUT => "message timeout",
        err::CHANNEL_BUSY => "channel busy",
        err::LOCK_REQUIRED => "lock required",
        err::INVALID_CHANNEL => "invalid channel",
        _ => "other error",
    }
}

/// How APDUs travel in HID reports; chosen from the carrier's catalog entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// CTAPHID packets, each APDU in one `MSG` message (catalog `hid_framing = "ctaphid-msg"`).
    CtaphidMsg,
}

impl Framing {
    /// The framing a catalog entry asks for. Vendor framings are named in the catalog so models
    /// can be described before ukey speaks them; until then they are refused with a clear error.
    pub fn for_catalog(framing: &HidFraming) -> Result<Self> {
        match framing {
            HidFraming::CtaphidMsg => Ok(Framing::CtaphidMsg),
            HidFraming::Vendor(name) => Err(Error::NotSupported(format!(
                "the HID framing `vendor:{name}` is not implemented in ukey; this HID driver speaks `ctaphid-msg` \
                 (use the vendor's PKCS#11 module for this model instead)"
            ))),
        }
    }
}

/// What is wrong with a report stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A report is not [`REPORT_LEN`] bytes long.
    #[error("the device sent a {got}-byte HID report where {REPORT_LEN} bytes are expected")]
    WrongReportSize {
        /// Its size.
        got: usize,
    },
    /// The length field announces more than the framing can carry.
    #[error("the device announced a {announced}-byte message; the framing carries at most {MAX_MESSAGE_LEN} bytes")]
    LengthTooLong {
        /// The length field.
        announced: usize,
    },
    /// A message to send is longer than the framing can carry.
    #[error("a {len}-byte message does not fit the HID framing (at most {MAX_MESSAGE_LEN} bytes)")]
    MessageTooLong {
        /// Its length.
        len: usize,
    },
    /// A continuation packet arrived with a sequence number other than the next one (a packet
    /// was lost or reordered).
    #[error("continuation packet {got} arrived where packet {expected} was due (a packet was lost or reordered)")]
    SequenceGap {
        /// The sequence number due.
        expected: u8,
        /// The one that came.
        got: u8,
    },
    /// A continuation packet arrived while no message was in progress (its init packet was lost,
    /// or it is left over from an abandoned message).
    #[error("continuation packet {seq} arrived without the start of a message")]
    UnexpectedContinuation {
        /// Its sequence number.
        seq: u8,
    },
    /// A new message started before the previous one was complete.
    #[error("a new message started after {received} of {expected} bytes of the previous one (packets were lost)")]
    Interrupted {
        /// Bytes of the unfinished message received.
        received: usize,
        /// Its announced length.
        expected: usize,
    },
    /// A command byte without bit 7 (the encoder's caller made a mistake).
    #[error("0x{0:02X} is not a CTAPHID command (bit 7 must be set)")]
    NotACommand(u8),
}

/// One parsed HID report.
#[derive(Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// The first packet of a message.
    Init {
        /// Channel.
        cid: u32,
        /// Command, bit 7 set.
        cmd: u8,
        /// Announced message length.
        len: usize,
        /// The packet's data bytes (all of them, padding included).
        data: &'a [u8],
    },
    /// A following packet.
    Cont {
        /// Channel.
        cid: u32,
        /// Sequence number.
        seq: u8,
        /// The packet's data bytes.
        data: &'a [u8],
    },
}

// Packets may carry APDUs with PINs: Debug shows the header, never the data.
impl fmt::Debug for Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Packet::Init { cid, cmd, len, .. } => write!(f, "Init {{ cid: {cid:08X}, cmd: {cmd:02X}, len: {len} }}"),
            Packet::Cont { cid, seq, .. } => write!(f, "Cont {{ cid: {cid:08X}, seq: {seq} }}"),
        }
    }
}

impl<'a> Packet<'a> {
    /// Parses one report; it must be exactly [`REPORT_LEN`] bytes.
    pub fn parse(report: &'a [u8]) -> Result<Self, FramingError> {
        let Some((header, _)) = report.split_first_chunk::<5>() else {
            return Err(FramingError::WrongReportSize { got: report.len() });
        };
        if report.len() != REPORT_LEN {
            return Err(FramingError::WrongReportSize { got: report.len() });
        }
        let [c0, c1, c2, c3, kind] = *header;
        let cid = u32::from_be_bytes([c0, c1, c2, c3]);
        if kind & 0x80 != 0 {
            let (len_hi, len_lo) = (report.get(5).copied().unwrap_or(0), report.get(6).copied().unwrap_or(0));
            let data = report.get(INIT_HEADER_LEN..).unwrap_or_default();
            Ok(Packet::Init { cid, cmd: kind, len: usize::from(u16::from_be_bytes([len_hi, len_lo])), data })
        } else {
            let data = report.get(CONT_HEADER_LEN..).unwrap_or_default();
            Ok(Packet::Cont { cid, seq: kind, data })
        }
    }

    /// The packet's channel.
    pub fn cid(&self) -> u32 {
        match self {
            Packet::Init { cid, .. } | Packet::Cont { cid, .. } => *cid,
        }
    }
}

/// Splits a message into the reports that carry it (at least one, the init packet).
pub fn encode(cid: u32, command: u8, payload: &[u8]) -> Result<Vec<[u8; REPORT_LEN]>, FramingError> {
    if command & 0x80 == 0 {
        return Err(FramingError::NotACommand(command));
    }
    if payload.len() > MAX_MESSAGE_LEN {
        return Err(FramingError::MessageTooLong { len: payload.len() });
    }
    let len = u16::try_from(payload.len()).map_err(|_| FramingError::MessageTooLong { len: payload.len() })?;
    let (first, rest) = payload.split_at(payload.len().min(INIT_DATA_LEN));
    let mut reports = Vec::with_capacity(1 + rest.len().div_ceil(CONT_DATA_LEN));
    let mut report = [0u8; REPORT_LEN];
    report[..4].copy_from_slice(&cid.to_be_bytes());
    report[4] = command;
    report[5..7].copy_from_slice(&len.to_be_bytes());
    report[INIT_HEADER_LEN..INIT_HEADER_LEN + first.len()].copy_from_slice(first);
    reports.push(report);
    for (seq, chunk) in rest.chunks(CONT_DATA_LEN).enumerate() {
        let mut report = [0u8; REPORT_LEN];
        report[..4].copy_from_slice(&cid.to_be_bytes());
        // At most 128 chunks fit below MAX_MESSAGE_LEN, so seq is at most 127.
        report[4] = u8::try_from(seq).map_err(|_| FramingError::MessageTooLong { len: payload.len() })?;
        report[CONT_HEADER_LEN..CONT_HEADER_LEN + chunk.len()].copy_from_slice(chunk);
        reports.push(report);
    }
    Ok(reports)
}

/// A complete message.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Channel.
    pub cid: u32,
    /// Command, bit 7 set.
    pub cmd: u8,
    /// The message data (exactly the announced length).
    pub data: Vec<u8>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Message {{ cid: {:08X}, cmd: {:02X}, {} bytes }}", self.cid, self.cmd, self.data.len())
    }
}

/// What one report did to the message being reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The report belongs to another channel; it was ignored.
    OtherChannel,
    /// Part of the message arrived; more is due.
    Pending {
        /// Bytes received so far.
        received: usize,
        /// Announced length.
        expected: usize,
    },
    /// The message is complete.
    Complete(Message),
}

struct InProgress {
    cmd: u8,
    expected: usize,
    data: Vec<u8>,
    next_seq: u8,
}

/// Rebuilds messages on one channel from reports, one report at a time. After an error the
/// partial message is dropped and the reassembler waits for a new init packet.
pub struct Reassembler {
    /// The channel listened to (learned from the init packet on the device side).
    cid: Option<u32>,
    /// True on the host side: the channel never changes.
    fixed: bool,
    current: Option<InProgress>,
}

impl Reassembler {
    /// Listens to channel `cid` only (the host side: packets of other channels are ignored).
    pub fn for_channel(cid: u32) -> Self {
        Reassembler { cid: Some(cid), fixed: true, current: None }
    }

    /// Listens to every channel (the device side, which learns the channel from the packet):
    /// while a message is in progress, packets of other channels are ignored; once it is complete
    /// (or broken) any channel may start the next one.
    pub fn any_channel() -> Self {
        Reassembler { cid: None, fixed: false, current: None }
    }

    /// Whether part of a message has arrived.
    pub fn in_progress(&self) -> bool {
        self.current.is_some()
    }

    /// Drops any partial message.
    pub fn reset(&mut self) {
        self.current = None;
        if !self.fixed {
            self.cid = None;
        }
    }

    fn listening_to(&self, cid: u32) -> bool {
        self.cid.is_none_or(|c| c == cid)
    }

    /// Takes one report.
    pub fn push(&mut self, report: &[u8]) -> Result<Step, FramingError> {
        let step = self.step(report);
        if matches!(step, Ok(Step::Complete(_)) | Err(_)) {
            self.reset();
        }
        step
    }

    fn step(&mut self, report: &[u8]) -> Result<Step, FramingError> {
        let packet = Packet::parse(report)?;
        if !self.listening_to(packet.cid()) {
            return Ok(Step::OtherChannel);
        }
        match packet {
            Packet::Init { cid, cmd, len, data } => {
                if let Some(current) = &self.current {
                    return Err(FramingError::Interrupted { received: current.data.len(), expected: current.expected });
                }
                if len > MAX_MESSAGE_LEN {
                    return Err(FramingError::LengthTooLong { announced: len });
                }
                let take = len.min(data.len());
                let mut message = Vec::with_capacity(len);
                message.extend_from_slice(data.get(..take).unwrap_or_default());
                if message.len() == len {
                    return Ok(Step::Complete(Message { cid, cmd, data: message }));
                }
                if self.cid.is_none() {
                    // Device side: the rest of this message must come on the same channel.
                    self.cid = Some(cid);
                }
                let received = message.len();
                self.current = Some(InProgress { cmd, expected: len, data: message, next_seq: 0 });
                Ok(Step::Pending { received, expected: len })
            }
            Packet::Cont { cid, seq, data } => {
                let Some(current) = self.current.as_mut() else {
                    return Err(FramingError::UnexpectedContinuation { seq });
                };
                if seq != current.next_seq {
                    let expected = current.next_seq;
                    return Err(FramingError::SequenceGap { expected, got: seq });
                }
                let take = (current.expected - current.data.len()).min(data.len());
                current.data.extend_from_slice(data.get(..take).unwrap_or_default());
                current.next_seq = current.next_seq.wrapping_add(1);
                if current.data.len() < current.expected {
                    return Ok(Step::Pending { received: current.data.len(), expected: current.expected });
                }
                let done = self.current.take();
                let (cmd, data) = done.map(|c| (c.cmd, c.data)).unwrap_or_default();
                Ok(Step::Complete(Message { cid, cmd, data }))
            }
        }
    }
}

/// The `INIT` request data: the nonce.
pub fn init_request(nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    nonce.to_vec()
}

/// A parsed `INIT` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitResponse {
    /// The nonce echoed back.
    pub nonce: [u8; NONCE_LEN],
    /// The allocated channel.
    pub cid: u32,
    /// CTAPHID protocol version (2).
    pub protocol: u8,
    /// Device version: major, minor, build.
    pub version: [u8; 3],
    /// Capability flags.
    pub capabilities: u8,
}

impl InitResponse {
    /// Parses the data of an `INIT` response (at least [`INIT_RESPONSE_LEN`] bytes).
    pub fn parse(data: &[u8]) -> Option<Self> {
        let (head, _) = data.split_first_chunk::<INIT_RESPONSE_LEN>()?;
        let (nonce, rest) = head.split_first_chunk::<NONCE_LEN>()?;
        let (cid, rest) = rest.split_first_chunk::<4>()?;
        let [protocol, major, minor, build, capabilities] = *rest else { return None };
        Some(InitResponse {
            nonce: *nonce,
            cid: u32::from_be_bytes(*cid),
            protocol,
            version: [major, minor, build],
            capabilities,
        })
    }

    /// Encodes the response (the device side).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INIT_RESPONSE_LEN);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.cid.to_be_bytes());
        out.push(self.protocol);
        out.extend_from_slice(&self.version);
        out.push(self.capabilities);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reassemble(cid: u32, reports: &[[u8; REPORT_LEN]]) -> Result<Message, FramingError> {
        let mut r = Reassembler::for_channel(cid);
        for report in reports {
            if let Step::Complete(m) = r.push(report)? {
                return Ok(m);
            }
        }
        panic!("message incomplete after {} reports", reports.len());
    }

    #[test]
    fn sizes_follow_the_specification() {
        assert_eq!(INIT_DATA_LEN, 57);
        assert_eq!(CONT_DATA_LEN, 59);
        assert_eq!(MAX_MESSAGE_LEN, 7609);
    }

    #[test]
    fn short_message_is_one_report_with_zero_padding() {
        let reports = encode(0x0102_0304, cmd::MSG, &[0xAA, 0xBB]).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(&reports[0][..9], &[1, 2, 3, 4, 0x83, 0, 2, 0xAA, 0xBB]);
        assert!(reports[0][9..].iter().all(|b| *b == 0));
    }

    #[test]
    fn longest_message_uses_every_sequence_number() {
        let payload: Vec<u8> = (0..MAX_MESSAGE_LEN).map(|i| (i % 251) as u8).collect();
        let reports = encode(7, cmd::MSG, &payload).unwrap();
        assert_eq!(reports.len(), 129);
        assert_eq!(reports[128][4], MAX_SEQ);
        assert_eq!(reassemble(7, &reports).unwrap().data, payload);
        assert_eq!(encode(7, cmd::MSG, &vec![0; MAX_MESSAGE_LEN + 1]), Err(FramingError::MessageTooLong { len: 7610 }));
    }

    #[test]
    fn wrong_report_sizes_are_errors() {
        let mut r = Reassembler::for_channel(1);
        for size in [0, 3, 5, 63, 65, 128] {
            assert_eq!(r.push(&vec![0u8; size]), Err(FramingError::WrongReportSize { got: size }), "size {size}");
        }
    }

    #[test]
    fn other_channels_are_ignored() {
        let theirs = encode(9, cmd::MSG, &[1; 100]).unwrap();
        let ours = encode(1, cmd::MSG, &[2; 100]).unwrap();
        let mut r = Reassembler::for_channel(1);
        assert_eq!(r.push(&ours[0]).unwrap(), Step::Pending { received: 57, expected: 100 });
        // Another program's message interleaved with ours changes nothing.
        assert_eq!(r.push(&theirs[0]).unwrap(), Step::OtherChannel);
        assert_eq!(r.push(&theirs[1]).unwrap(), Step::OtherChannel);
        let Step::Complete(m) = r.push(&ours[1]).unwrap() else { panic!("incomplete") };
        assert_eq!(m.data, vec![2; 100]);
    }

    #[test]
    fn lost_and_reordered_continuations_are_errors() {
        let reports = encode(1, cmd::MSG, &[3; 300]).unwrap();
        // Lost packet 1.
        let mut r = Reassembler::for_channel(1);
        r.push(&reports[0]).unwrap();
        r.push(&reports[1]).unwrap();
        assert_eq!(r.push(&reports[3]), Err(FramingError::SequenceGap { expected: 1, got: 2 }));
        assert!(!r.in_progress());
        // Swapped packets 0 and 1.
        let mut r = Reassembler::for_channel(1);
        r.push(&reports[0]).unwrap();
        assert_eq!(r.push(&reports[2]), Err(FramingError::SequenceGap { expected: 0, got: 1 }));
        // A continuation with no start.
        let mut r = Reassembler::for_channel(1);
        assert_eq!(r.push(&reports[1]), Err(FramingError::UnexpectedContinuation { seq: 0 }));
        // A new message before the old one ended.
        let mut r = Reassembler::for_channel(1);
        r.push(&reports[0]).unwrap();
        assert_eq!(r.push(&reports[0]), Err(FramingError::Interrupted { received: 57, expected: 300 }));
    }

    #[test]
    fn announced_length_above_the_maximum_is_an_error() {
        let mut report = encode(1, cmd::MSG, &[0; 10]).unwrap()[0];
        report[5..7].copy_from_slice(&0xFFFFu16.to_be_bytes());
        let mut r = Reassembler::for_channel(1);
        assert_eq!(r.push(&report), Err(FramingError::LengthTooLong { announced: 0xFFFF }));
        // Exactly the maximum is fine: it waits for the continuation packets.
        report[5..7].copy_from_slice(&(MAX_MESSAGE_LEN as u16).to_be_bytes());
        assert_eq!(r.push(&report), Ok(Step::Pending { received: 57, expected: MAX_MESSAGE_LEN }));
    }

    #[test]
    fn length_longer_than_the_data_waits_for_more() {
        // An init packet that announces 100 bytes is only the start; the rest must follow.
        let mut report = encode(1, cmd::MSG, &[5; 10]).unwrap()[0];
        report[5..7].copy_from_slice(&100u16.to_be_bytes());
        let mut r = Reassembler::for_channel(1);
        assert_eq!(r.push(&report), Ok(Step::Pending { received: 57, expected: 100 }));
    }

    #[test]
    fn device_side_learns_the_channel_of_a_message() {
        let a = encode(5, cmd::MSG, &[1; 70]).unwrap();
        let b = encode(6, cmd::MSG, &[2; 70]).unwrap();
        let mut r = Reassembler::any_channel();
        r.push(&a[0]).unwrap();
        assert_eq!(r.push(&b[0]).unwrap(), Step::OtherChannel);
        assert!(matches!(r.push(&a[1]).unwrap(), Step::Complete(m) if m.cid == 5));
        assert!(matches!(r.push(&b[0]).unwrap(), Step::Pending { .. }));
    }

    #[test]
    fn init_response_round_trips() {
        let response = InitResponse {
            nonce: [1, 2, 3, 4, 5, 6, 7, 8],
            cid: 0xDEAD_BEEF,
            protocol: 2,
            version: [1, 2, 3],
            capabilities: 8,
        };
        assert_eq!(InitResponse::parse(&response.encode()), Some(response));
        assert_eq!(InitResponse::parse(&response.encode()[..16]), None);
    }

    #[test]
    fn vendor_framings_are_refused_with_a_reason() {
        assert_eq!(Framing::for_catalog(&HidFraming::CtaphidMsg).unwrap(), Framing::CtaphidMsg);
        let err = Framing::for_catalog(&HidFraming::Vendor("acme".into())).unwrap_err();
        assert!(err.to_string().contains("vendor:acme"), "{err}");
    }

    #[test]
    fn debug_never_shows_data() {
        let reports = encode(1, cmd::MSG, b"\x00\x20\x00\x80\x08123456\xff\xff").unwrap();
        let text = format!("{:?}", Packet::parse(&reports[0]).unwrap());
        assert!(!text.contains("31"), "{text}");
        let m = reassemble(1, &reports).unwrap();
        assert!(!format!("{m:?}").contains("31"));
    }
}
