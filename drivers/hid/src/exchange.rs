//! The host side of CTAPHID over one [`HidDevice`]: allocating a channel (`INIT` with a nonce on
//! the broadcast channel), resynchronising it after a broken exchange (`INIT` on the channel
//! itself), and request/response calls. Every wait has a deadline and every loop a bound, so a
//! device that floods, stalls or disappears gives a clear error, never a hang.

use std::time::{Duration, Instant};

use zeroize::Zeroize;

use crate::device::{DeviceError, HidDevice};
use crate::framing::{
    self, BROADCAST_CID, FramingError, INIT_RESPONSE_LEN, InitResponse, Message, NONCE_LEN, Reassembler, Step, cmd,
};

/// Most reports read while waiting for one response (the longest message is 129 reports; the
/// rest allows for keep-alives and other programs' traffic). Bounds the loop even for a device
/// that answers every read at once with something useless.
pub const MAX_REPORTS_PER_CALL: usize = 8192;

/// How long to wait for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest silence on our channel (no packet and no keep-alive) before giving up.
    pub idle: Duration,
    /// Longest time one call may take in all, keep-alives included.
    pub total: Duration,
    /// Longest wait for another thread or process to finish with the device.
    pub lock: Duration,
}

impl Default for Timeouts {
    /// 30 s of silence (on-card RSA key generation without keep-alives takes that long), two
    /// minutes in all, and two minutes for another program's operation to end.
    fn default() -> Self {
        Timeouts { idle: Duration::from_secs(30), total: Duration::from_secs(120), lock: Duration::from_secs(120) }
    }
}

/// What went wrong on the link; [`crate::errors`] turns it into a contract error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Moving a report failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The report stream broke the framing rules.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// The device did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// The device answered with a CTAPHID `ERROR`.
    #[error("the device reported CTAPHID error 0x{code:02X} ({})", framing::error_name(*code))]
    Reported {
        /// The error code.
        code: u8,
    },
    /// The device answered something that makes no sense for the request.
    #[error("{0}")]
    Protocol(String),
}

/// Sends one message as reports. The reports are wiped after sending: an APDU may carry a PIN.
fn send(dev: &mut dyn HidDevice, cid: u32, command: u8, payload: &[u8]) -> Result<(), LinkError> {
    let mut reports = framing::encode(cid, command, payload)?;
    let mut result = Ok(());
    for report in &reports {
        if let Err(e) = dev.write_report(report) {
            result = Err(e.into());
            break;
        }
    }
    reports.iter_mut().for_each(Zeroize::zeroize);
    result
}

/// What a receive loop does with a complete message.
enum Verdict<T> {
    /// The answer.
    Done(T),
    /// Not ours (another program's `INIT` answer, a stale message): keep waiting.
    Skip,
}

/// Reads reports on `cid` until `accept` takes a message, skipping keep-alives. When `lenient`,
/// malformed packets (stale ones of an abandoned exchange) are skipped too; if nothing good
/// follows, the last one is the error.
fn receive<T>(
    dev: &mut dyn HidDevice,
    cid: u32,
    timeouts: Timeouts,
    lenient: bool,
    mut accept: impl FnMut(Message) -> Result<Verdict<T>, LinkError>,
) -> Result<T, LinkError> {
    let started = Instant::now();
    let total_deadline = started + timeouts.total;
    let mut idle_deadline = started + timeouts.idle;
    let mut reassembler = Reassembler::for_channel(cid);
    let mut progress = (0usize, 0usize);
    // When lenient: the last malformed packet skipped, reported if nothing good follows.
    let mut skipped: Option<FramingError> = None;
    for _ in 0..MAX_REPORTS_PER_CALL {
        let now = Instant::now();
        let deadline = idle_deadline.min(total_deadline);
        if now >= deadline {
            return Err(match skipped {
                Some(e) => e.into(),
                None => timed_out(started, progress, now >= total_deadline),
            });
        }
        let Some(mut report) = dev.read_report(deadline - now)? else { continue };
        let pushed = reassembler.push(&report);
        report.zeroize();
        let step = match pushed {
            Ok(step) => step,
            Err(e) if lenient => {
                log::debug!("skipping stale HID packets while resynchronising: {e}");
                skipped = Some(e);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match step {
            Step::OtherChannel => {}
            Step::Pending { received, expected } => {
                progress = (received, expected);
                idle_deadline = Instant::now() + timeouts.idle;
            }
            Step::Complete(message) => {
                idle_deadline = Instant::now() + timeouts.idle;
                progress = (0, 0);
                match message.cmd {
                    cmd::KEEPALIVE => {}
                    cmd::ERROR if !lenient => {
                        let code = message.data.first().copied().unwrap_or(framing::err::OTHER);
                        return Err(LinkError::Reported { code });
                    }
                    _ => match accept(message)? {
                        Verdict::Done(value) => return Ok(value),
                        Verdict::Skip => {}
                    },
                }
            }
        }
    }
    Err(LinkError::Protocol(format!(
        "the device sent {MAX_REPORTS_PER_CALL} reports without completing an answer; it may be faulty"
    )))
}

fn timed_out(started: Instant, (received, expected): (usize, usize), total: bool) -> LinkError {
    let waited = started.elapsed();
    if expected > 0 {
        LinkError::Timeout(format!(
            "the device announced a {expected}-byte answer but sent only {received} bytes, then nothing for \
             {waited:.1?} (a packet was lost, or the length field is wrong)"
        ))
    } else if total {
        LinkError::Timeout(format!("the device kept the request busy for {waited:.1?} without answering"))
    } else {
        LinkError::Timeout(format!("the device did not answer within {waited:.1?}"))
    }
}

fn fresh_nonce() -> Result<[u8; NONCE_LEN], LinkError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| LinkError::Protocol(format!("no randomness for the INIT nonce: {e}")))?;
    Ok(nonce)
}

/// `INIT` with a fresh nonce on `on_cid`, waiting for the answer that echoes it.
fn init(dev: &mut dyn HidDevice, on_cid: u32, timeouts: Timeouts) -> Result<InitResponse, LinkError> {
    let nonce = fresh_nonce()?;
    send(dev, on_cid, cmd::INIT, &framing::init_request(&nonce))?;
    let resync = on_cid != BROADCAST_CID;
    receive(dev, on_cid, timeouts, resync, |message| {
        if message.cmd != cmd::INIT {
            // On the broadcast channel, another program's traffic; when resynchronising, the
            // stale answer of the abandoned request.
            return Ok(Verdict::Skip);
        }
        let Some(response) = InitResponse::parse(&message.data) else {
            return Err(LinkError::Protocol(format!(
                "the device's INIT answer has {} bytes; at least {INIT_RESPONSE_LEN} are expected",
                message.data.len()
            )));
        };
        if response.nonce != nonce {
            // Another program's INIT answer on the broadcast channel.
            return Ok(Verdict::Skip);
        }
        Ok(Verdict::Done(response))
    })
}

/// Allocates a channel: `INIT` on the broadcast channel.
pub fn allocate_channel(dev: &mut dyn HidDevice, timeouts: Timeouts) -> Result<u32, LinkError> {
    let response = init(dev, BROADCAST_CID, timeouts)?;
    if response.cid == BROADCAST_CID || response.cid == 0 {
        return Err(LinkError::Protocol(format!("the device allocated the reserved channel {:08X}", response.cid)));
    }
    log::debug!(
        "{}: CTAPHID channel {:08X} (protocol {}, device {}.{}.{}, capabilities {:02X})",
        dev.path(),
        response.cid,
        response.protocol,
        response.version[0],
        response.version[1],
        response.version[2],
        response.capabilities
    );
    Ok(response.cid)
}

/// Resynchronises channel `cid` after a broken exchange: the device abandons any request in
/// progress, and stale packets still in flight are read and dropped.
pub fn resync(dev: &mut dyn HidDevice, cid: u32, timeouts: Timeouts) -> Result<(), LinkError> {
    let response = init(dev, cid, timeouts)?;
    if response.cid != cid {
        return Err(LinkError::Protocol(format!(
            "the device answered the resynchronisation of channel {cid:08X} with channel {:08X}",
            response.cid
        )));
    }
    Ok(())
}

/// Sends `payload` as command `command` on channel `cid` and returns the answer's data; the
/// answer must carry the same command.
pub fn call(
    dev: &mut dyn HidDevice,
    cid: u32,
    command: u8,
    payload: &[u8],
    timeouts: Timeouts,
) -> Result<Vec<u8>, LinkError> {
    send(dev, cid, command, payload)?;
    receive(dev, cid, timeouts, false, |message| {
        if message.cmd == command {
            Ok(Verdict::Done(message.data))
        } else {
            Err(LinkError::Protocol(format!(
                "the device answered command 0x{command:02X} with command 0x{:02X}",
                message.cmd
            )))
        }
    })
}
