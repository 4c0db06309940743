//! An in-process HID token for tests, behind the same [`HidDevice`] trait as a real device.
//!
//! WHY it exists: the test machines' kernel has no `/dev/uhid` and cannot load modules, so no
//! virtual HID device can be created there. This emulator plays the device side of the CTAPHID
//! framing (channel allocation with `INIT`, resynchronisation, `PING`, `MSG` carrying APDUs,
//! `ERROR` answers, busy channels) in front of any card application — the tests put ukey's
//! virtual PIV card (`ukey-vpiv`) behind it — and can misbehave on request ([`Faults`]) so the
//! host side's handling of lost, reordered, oversized, foreign and missing packets and of a
//! device that disappears mid-transfer is tested. Like hidraw, every open handle receives every
//! input report; the channel ids keep programs apart.
//!
//! It is compiled only for tests (`cfg(test)` or the `testing` feature).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ukey_api::{Error, Result};

use crate::device::{DeviceError, HidDevice};
use crate::framing::{
    self, BROADCAST_CID, FramingError, INIT_HEADER_LEN, InitResponse, Message, NONCE_LEN, Packet, REPORT_LEN,
    Reassembler, Step, cmd, err,
};
use crate::source::{DeviceSource, HidDeviceInfo};

/// The card behind the token: one command APDU in, one response APDU out.
pub type CardFn = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

/// Ways the emulated token misbehaves, applied to every answer until changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Never answer `MSG` (the host must time out).
    pub silent: bool,
    /// Leave out continuation packet N of every answer (a lost packet).
    pub drop_continuation: Option<u8>,
    /// Swap continuation packets 0 and 1 of every answer (packets out of order).
    pub swap_continuations: bool,
    /// Send a packet of another channel before every answer (another program's traffic).
    pub foreign_packets: bool,
    /// Send this many keep-alives before every answer.
    pub keepalives: u32,
    /// Cut every report sent to this many bytes (reports of the wrong size).
    pub report_len: Option<usize>,
    /// Announce this length in every answer's init packet instead of the true one.
    pub announce_len: Option<u16>,
    /// Answer every `MSG` with this CTAPHID error code.
    pub error: Option<u8>,
    /// Answer on another channel than the request's (the host must not take it).
    pub answer_on_other_channel: bool,
    /// Disappear after this many reports sent in total (counting from when the fault is set).
    pub unplug_after_reports: Option<u64>,
    /// Forget every allocated channel before the next `MSG` (as when another program's `INIT`
    /// evicts them), once.
    pub forget_channels_once: bool,
}

struct State {
    card: CardFn,
    plugged: bool,
    next_cid: u32,
    channels: BTreeSet<u32>,
    reassembler: Reassembler,
    queues: BTreeMap<u64, VecDeque<Vec<u8>>>,
    next_handle: u64,
    faults: Faults,
    reports_out_since_fault: u64,
    apdus: u64,
    reports_in: u64,
}

struct Shared {
    state: Mutex<State>,
    input: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An emulated HID token. Cloning gives another handle on the same token.
#[derive(Clone)]
pub struct VirtualHidToken {
    shared: Arc<Shared>,
    path: String,
}

impl VirtualHidToken {
    /// A token at `path` answering APDUs with `card`.
    pub fn new(path: impl Into<String>, card: impl FnMut(&[u8]) -> Vec<u8> + Send + 'static) -> Self {
        let state = State {
            card: Box::new(card),
            plugged: true,
            next_cid: 0x0100_0001,
            channels: BTreeSet::new(),
            reassembler: Reassembler::any_channel(),
            queues: BTreeMap::new(),
            next_handle: 0,
            faults: Faults::default(),
            reports_out_since_fault: 0,
            apdus: 0,
            reports_in: 0,
        };
        VirtualHidToken {
            shared: Arc::new(Shared { state: Mutex::new(state), input: Condvar::new() }),
            path: path.into(),
        }
    }

    /// The device path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Opens a handle (as a program opens the hidraw node).
    pub fn open(&self) -> TokenHandle {
        let mut state = self.shared.lock();
        let id = state.next_handle;
        state.next_handle += 1;
        state.queues.insert(id, VecDeque::new());
        TokenHandle { shared: self.shared.clone(), id, path: self.path.clone() }
    }

    /// Sets the faults for the answers from now on.
    pub fn set_faults(&self, faults: Faults) {
        let mut state = self.shared.lock();
        state.faults = faults;
        state.reports_out_since_fault = 0;
    }

    /// Unplugs the token: every handle's reads and writes fail from now on, waiting reads wake.
    pub fn unplug(&self) {
        self.shared.lock().plugged = false;
        self.shared.input.notify_all();
    }

    /// Whether the token is plugged in.
    pub fn is_plugged(&self) -> bool {
        self.shared.lock().plugged
    }

    /// APDUs the card has executed.
    pub fn apdus(&self) -> u64 {
        self.shared.lock().apdus
    }

    /// Reports the host has written.
    pub fn reports_in(&self) -> u64 {
        self.shared.lock().reports_in
    }

    /// Channels allocated and not forgotten.
    pub fn channels(&self) -> usize {
        self.shared.lock().channels.len()
    }

    /// Puts `reports` on every handle's input queue as they are (for tests of the host side
    /// against arbitrary device output).
    pub fn inject(&self, reports: &[Vec<u8>]) {
        let mut state = self.shared.lock();
        for report in reports {
            for queue in state.queues.values_mut() {
                queue.push_back(report.clone());
            }
        }
        drop(state);
        self.shared.input.notify_all();
    }
}

impl State {
    /// Takes one report from the host.
    fn receive(&mut self, report: &[u8]) {
        self.reports_in += 1;
        let packet_cid = Packet::parse(report).map(|p| p.cid()).ok();
        match self.reassembler.push(report) {
            Ok(Step::Pending { .. }) => {}
            Ok(Step::OtherChannel) => {
                // Another channel talks while a message is being received on ours.
                if let Some(cid) = packet_cid {
                    self.error(cid, err::CHANNEL_BUSY);
                }
            }
            Ok(Step::Complete(message)) => self.handle(message),
            Err(FramingError::WrongReportSize { got }) => log::debug!("emulated token: ignoring a {got}-byte report"),
            Err(e) => {
                let code = match e {
                    FramingError::LengthTooLong { .. } => err::INVALID_LEN,
                    _ => err::INVALID_SEQ,
                };
                if let Some(cid) = packet_cid {
                    self.error(cid, code);
                }
            }
        }
    }

    fn handle(&mut self, message: Message) {
        let Message { cid, cmd: command, data } = message;
        if command == cmd::INIT {
            return self.init(cid, &data);
        }
        if cid == BROADCAST_CID || !self.channels.contains(&cid) {
            return self.error(cid, err::INVALID_CHANNEL);
        }
        match command {
            cmd::PING => self.emit(cid, cmd::PING, &data, false),
            cmd::MSG => {
                if self.faults.forget_channels_once {
                    self.faults.forget_channels_once = false;
                    self.channels.clear();
                    return self.error(cid, err::INVALID_CHANNEL);
                }
                if self.faults.silent {
                    return;
                }
                if let Some(code) = self.faults.error {
                    return self.error(cid, code);
                }
                self.apdus += 1;
                let answer = (self.card)(&data);
                self.emit(cid, cmd::MSG, &answer, true);
            }
            _ => self.error(cid, err::INVALID_CMD),
        }
    }

    fn init(&mut self, cid: u32, data: &[u8]) {
        let Ok(nonce) = <[u8; NONCE_LEN]>::try_from(data) else {
            return self.error(cid, err::INVALID_LEN);
        };
        let allocated = if cid == BROADCAST_CID {
            let new = self.next_cid;
            self.next_cid = self.next_cid.wrapping_add(1).max(1);
            self.channels.insert(new);
            new
        } else if self.channels.contains(&cid) {
            // Resynchronisation: abandon anything in progress on the channel.
            cid
        } else {
            return self.error(cid, err::INVALID_CHANNEL);
        };
        let response = InitResponse { nonce, cid: allocated, protocol: 2, version: [0, 1, 0], capabilities: 0x08 };
        self.emit(cid, cmd::INIT, &response.encode(), false);
    }

    fn error(&mut self, cid: u32, code: u8) {
        self.emit(cid, cmd::ERROR, &[code], false);
    }

    /// Sends a message to every handle, with the faults applied to answers (`faulty`).
    fn emit(&mut self, cid: u32, command: u8, payload: &[u8], faulty: bool) {
        let Ok(mut reports) = framing::encode(cid, command, payload) else {
            return self.error(cid, err::OTHER);
        };
        let mut out: Vec<Vec<u8>> = Vec::new();
        if faulty {
            let f = self.faults.clone();
            if let Some(len) = f.announce_len
                && let Some(first) = reports.first_mut()
            {
                first[5..INIT_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
            }
            if f.swap_continuations && reports.len() > 2 {
                reports.swap(1, 2);
            }
            if let Some(n) = f.drop_continuation {
                let index = usize::from(n) + 1;
                if index < reports.len() {
                    reports.remove(index);
                }
            }
            if f.answer_on_other_channel {
                for report in &mut reports {
                    report[..4].copy_from_slice(&(cid ^ 0x00FF_0000).to_be_bytes());
                }
            }
            for _ in 0..f.keepalives {
                if let Ok(k) = framing::encode(cid, cmd::KEEPALIVE, &[1]) {
                    out.extend(k.iter().map(|r| r.to_vec()));
                }
            }
            if f.foreign_packets
                && let Ok(other) = framing::encode(cid ^ 0x5A5A_0000, cmd::MSG, &[0x6D; 100])
            {
                out.extend(other.iter().map(|r| r.to_vec()));
            }
            out.extend(reports.iter().map(|r| r.to_vec()));
            if let Some(len) = f.report_len {
                for report in &mut out {
                    report.truncate(len.min(REPORT_LEN));
                }
            }
        } else {
            out.extend(reports.iter().map(|r| r.to_vec()));
        }
        for report in out {
            if !self.plugged {
                return;
            }
            for queue in self.queues.values_mut() {
                queue.push_back(report.clone());
            }
            self.reports_out_since_fault += 1;
            if self.faults.unplug_after_reports.is_some_and(|n| self.reports_out_since_fault >= n) {
                self.plugged = false;
            }
        }
    }
}

/// One open handle on an emulated token.
pub struct TokenHandle {
    shared: Arc<Shared>,
    id: u64,
    path: String,
}

impl Drop for TokenHandle {
    fn drop(&mut self) {
        self.shared.lock().queues.remove(&self.id);
    }
}

impl HidDevice for TokenHandle {
    fn write_report(&mut self, report: &[u8]) -> Result<(), DeviceError> {
        let mut state = self.shared.lock();
        if !state.plugged {
            return Err(DeviceError::Gone);
        }
        state.receive(report);
        drop(state);
        self.shared.input.notify_all();
        Ok(())
    }

    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, DeviceError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if !state.plugged {
                return Err(DeviceError::Gone);
            }
            if let Some(report) = state.queues.get_mut(&self.id).and_then(VecDeque::pop_front) {
                return Ok(Some(report));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            state = self.shared.input.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn path(&self) -> &str {
        &self.path
    }
}

/// A USB bus of emulated tokens, as a [`DeviceSource`] for driver and hot-plug tests.
#[derive(Clone, Default)]
pub struct EmulatedBus {
    devices: Arc<Mutex<Vec<(HidDeviceInfo, VirtualHidToken)>>>,
}

impl EmulatedBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn devices(&self) -> MutexGuard<'_, Vec<(HidDeviceInfo, VirtualHidToken)>> {
        self.devices.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plugs a token in with these USB ids; its path is the token's.
    pub fn plug(&self, token: &VirtualHidToken, vendor_id: u16, product_id: u16, serial: Option<&str>) {
        let info = HidDeviceInfo {
            path: token.path().to_string(),
            vendor_id,
            product_id,
            serial: serial.map(str::to_string),
            manufacturer: Some("ukey tests".into()),
            product: Some("emulated HID token".into()),
            usage_page: crate::source::FIDO_USAGE_PAGE,
            usage: 1,
            interface: 0,
        };
        self.devices().push((info, token.clone()));
    }

    /// Unplugs the token at `path` (it also stops answering).
    pub fn unplug(&self, path: &str) {
        let mut devices = self.devices();
        if let Some(pos) = devices.iter().position(|(i, _)| i.path == path)
            && let Some((_, token)) = devices.get(pos)
        {
            token.unplug();
            devices.remove(pos);
        }
    }
}

impl DeviceSource for EmulatedBus {
    fn enumerate(&self) -> Result<Vec<HidDeviceInfo>> {
        Ok(self.devices().iter().map(|(i, _)| i.clone()).collect())
    }

    fn open(&self, info: &HidDeviceInfo) -> Result<Box<dyn HidDevice>> {
        self.devices()
            .iter()
            .find(|(i, _)| i.path == info.path)
            .map(|(_, t)| Box::new(t.open()) as Box<dyn HidDevice>)
            .ok_or(Error::TokenRemoved)
    }
}
