//! The card: routes command APDUs to the PIV application and shapes responses (command chaining,
//! `61xx`/GET RESPONSE for long answers to short commands, `6Cxx` for a too-small Le).

mod admin;
mod auth;
mod data;
mod keygen;
mod pin;
mod select;

use std::path::{Path, PathBuf};

use crate::apdu::Command;
use crate::config::{CardConfig, ConfigError};
use crate::keys::KeyAlgorithm;
use crate::state::{CardState, PinPolicy, StateError};
use crate::status::Sw;

/// Instruction bytes the card understands.
mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const GET_DATA: u8 = 0xCB;
    pub const PUT_DATA: u8 = 0xDB;
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const GENERATE_KEY_PAIR: u8 = 0x47;
    pub const GET_RESPONSE: u8 = 0xC0;
    pub const RESET: u8 = 0xFB;
    pub const SET_MGMT_KEY: u8 = 0xFF;
}

/// Largest command data a chain may accumulate.
const MAX_CHAIN_LEN: usize = 64 * 1024;

/// Where a management-key authentication stands between its two GENERAL AUTHENTICATE steps.
#[derive(Debug)]
enum PendingAuth {
    /// Mutual authentication: the card sent `E(witness)` and waits for the witness back.
    Witness(Vec<u8>),
    /// External authentication: the card sent a challenge and waits for its encryption.
    Challenge(Vec<u8>),
}

/// Volatile state: lost on power-off, reset, and (for the security status) SELECT.
#[derive(Debug, Default)]
struct Session {
    selected: bool,
    pin_verified: bool,
    /// Set by a successful VERIFY, consumed by one use of a PIN-always key.
    pin_always_window: bool,
    mgmt_authenticated: bool,
    pending_auth: Option<PendingAuth>,
    chain: Option<Chain>,
    pending_response: Vec<u8>,
}

#[derive(Debug)]
struct Chain {
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
}

impl Session {
    /// Clears the security status (SP 800-73-4 Part 2 §3.1.1: SELECT resets it).
    fn clear_security(&mut self) {
        self.pin_verified = false;
        self.pin_always_window = false;
        self.mgmt_authenticated = false;
        self.pending_auth = None;
    }
}

/// A virtual PIV card: persistent [`CardState`] plus the volatile session, answering command
/// APDUs with [`VirtualPiv::execute`].
pub struct VirtualPiv {
    state: CardState,
    session: Session,
    state_file: Option<PathBuf>,
    /// When set, the PIV application is selected at power-on (a card where PIV is the default
    /// application); otherwise hosts must SELECT it first.
    pub default_selected: bool,
    /// How the card answers a short command whose explicit Le is smaller than its response.
    pub short_le_policy: ShortLePolicy,
}

/// What the card does when a short command's explicit Le (1..=255) is smaller than its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShortLePolicy {
    /// Send the first Le bytes with `61xx` for the rest (what PIV cards such as the YubiKey do,
    /// and what OpenSC relies on: it reads the first 8 bytes of an object to learn its length).
    #[default]
    SendPartWith61xx,
    /// Answer `6Cxx` (the exact length) when the response fits in 256 bytes, so the host must
    /// send the command again with the right Le (T=0-style cards do this).
    WrongLe6Cxx,
}

/// Why a card could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// Unusable factory settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
}

impl VirtualPiv {
    /// A new card with `config` as factory settings, living only in memory.
    pub fn new(config: CardConfig) -> Result<Self, CardError> {
        config.validate()?;
        Ok(Self::from_state(CardState::new(config), None))
    }

    /// A card persisted in `path`: loaded from it when it exists (then `config` is ignored),
    /// otherwise created from `config` and written there. Every change is written through.
    pub fn open(path: &Path, config: CardConfig) -> Result<Self, CardError> {
        if path.exists() {
            return Ok(Self::from_state(CardState::load(path)?, Some(path.to_path_buf())));
        }
        config.validate()?;
        let state = CardState::new(config);
        state.save(path)?;
        Ok(Self::from_state(state, Some(path.to_path_buf())))
    }

    fn from_state(state: CardState, state_file: Option<PathBuf>) -> Self {
        VirtualPiv {
            state,
            session: Session::default(),
            state_file,
            default_selected: false,
            short_le_policy: ShortLePolicy::default(),
        }
    }

    /// Power-on, warm reset or power-off: the volatile state goes, the persistent state stays.
    pub fn power_cycle(&mut self) {
        self.session = Session { selected: self.default_selected, ..Session::default() };
    }

    /// Answers one command APDU with a response APDU (data followed by SW1 SW2).
    pub fn execute(&mut self, raw: &[u8]) -> Vec<u8> {
        let cmd = match Command::parse(raw) {
            Ok(cmd) => cmd,
            Err(sw) => return sw.to_bytes().to_vec(),
        };
        log::debug!(
            "card <- CLA {:02X} INS {:02X} P1 {:02X} P2 {:02X} Lc {}",
            cmd.cla,
            cmd.ins,
            cmd.p1,
            cmd.p2,
            cmd.data.len()
        );
        let out = self.execute_command(&cmd);
        if let [.., sw1, sw2] = out.as_slice() {
            log::debug!("card -> {} bytes, SW {sw1:02X}{sw2:02X}", out.len() - 2);
        }
        out
    }

    fn execute_command(&mut self, cmd: &Command<'_>) -> Vec<u8> {
        if cmd.cla & !0x10 != 0 {
            return Sw::CLA_NOT_SUPPORTED.to_bytes().to_vec();
        }
        if cmd.ins == ins::GET_RESPONSE {
            return self.get_response(cmd);
        }
        self.session.pending_response.clear();

        // Command chaining (ISO 7816-4 §5.1.1.1): collect the data, answer 9000 until the last.
        let chained_data;
        let mut data = cmd.data;
        if let Some(chain) = &mut self.session.chain {
            if (chain.ins, chain.p1, chain.p2) != (cmd.ins, cmd.p1, cmd.p2) {
                self.session.chain = None;
                return Sw::LAST_COMMAND_EXPECTED.to_bytes().to_vec();
            }
            if chain.data.len() + cmd.data.len() > MAX_CHAIN_LEN {
                self.session.chain = None;
                return Sw::NO_SPACE.to_bytes().to_vec();
            }
            chain.data.extend_from_slice(cmd.data);
            if cmd.is_chained() {
                return Sw::OK.to_bytes().to_vec();
            }
            chained_data = self.session.chain.take().map(|c| c.data).unwrap_or_default();
            data = &chained_data;
        } else if cmd.is_chained() {
            self.session.chain = Some(Chain { ins: cmd.ins, p1: cmd.p1, p2: cmd.p2, data: cmd.data.to_vec() });
            return Sw::OK.to_bytes().to_vec();
        }

        if cmd.ins != ins::GENERAL_AUTHENTICATE {
            self.session.pending_auth = None;
        }
        let result = self.dispatch(cmd.ins, cmd.p1, cmd.p2, data);
        match result {
            Ok(body) => self.shape_response(body, cmd),
            Err(sw) => sw.to_bytes().to_vec(),
        }
    }

    fn dispatch(&mut self, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, Sw> {
        if ins == ins::SELECT {
            return self.select(p1, p2, data);
        }
        if !self.session.selected {
            // No application to route the instruction to.
            return Err(Sw::INS_NOT_SUPPORTED);
        }
        match ins {
            ins::GET_DATA => self.get_data(p1, p2, data),
            ins::PUT_DATA => self.put_data(p1, p2, data),
            ins::VERIFY => self.verify(p1, p2, data),
            ins::CHANGE_REFERENCE_DATA => self.change_reference_data(p1, p2, data),
            ins::RESET_RETRY_COUNTER => self.reset_retry_counter(p1, p2, data),
            ins::GENERAL_AUTHENTICATE => self.general_authenticate(p1, p2, data),
            ins::GENERATE_KEY_PAIR => self.generate_key_pair(p1, p2, data),
            ins::RESET => self.reset_card(p1, p2, data),
            ins::SET_MGMT_KEY => self.set_management_key(p1, p2, data),
            _ => Err(Sw::INS_NOT_SUPPORTED),
        }
    }

    /// Sends what fits in Ne; the rest waits for GET RESPONSE behind `61xx`. Under
    /// [`ShortLePolicy::WrongLe6Cxx`] an explicit short Le smaller than a response of at most
    /// 256 bytes gets `6Cxx` instead.
    fn shape_response(&mut self, body: Vec<u8>, cmd: &Command<'_>) -> Vec<u8> {
        let ne = cmd.ne.unwrap_or(if cmd.extended { 65536 } else { 256 });
        if body.len() <= ne {
            return with_sw(body, Sw::OK);
        }
        if self.short_le_policy == ShortLePolicy::WrongLe6Cxx && !cmd.extended && body.len() <= 256 && ne < 256 {
            return Sw::wrong_le(body.len()).to_bytes().to_vec();
        }
        let mut body = body;
        let rest = body.split_off(ne);
        let sw = Sw::bytes_remaining(rest.len());
        self.session.pending_response = rest;
        with_sw(body, sw)
    }

    fn get_response(&mut self, cmd: &Command<'_>) -> Vec<u8> {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Sw::WRONG_P1P2.to_bytes().to_vec();
        }
        if self.session.pending_response.is_empty() {
            return Sw::CONDITIONS_OF_USE.to_bytes().to_vec();
        }
        let ne = cmd.ne.unwrap_or(256);
        let mut chunk = std::mem::take(&mut self.session.pending_response);
        if chunk.len() <= ne {
            return with_sw(chunk, Sw::OK);
        }
        let rest = chunk.split_off(ne);
        let sw = Sw::bytes_remaining(rest.len());
        self.session.pending_response = rest;
        with_sw(chunk, sw)
    }

    /// Writes the state through to the state file, if the card has one.
    fn persist(&self) -> Result<(), Sw> {
        if let Some(path) = &self.state_file {
            self.state.save(path).map_err(|err| {
                log::error!("{err}");
                Sw::MEMORY_FAILURE
            })?;
        }
        Ok(())
    }

    // ---- inspection for tests (what a test would read off the card's display, if it had one)

    /// PIN tries left.
    pub fn pin_tries_left(&self) -> u8 {
        self.state.pin.left
    }

    /// PUK tries left.
    pub fn puk_tries_left(&self) -> u8 {
        self.state.puk.left
    }

    /// Whether the PIN is verified in the current session.
    pub fn pin_verified(&self) -> bool {
        self.session.pin_verified
    }

    /// Whether the management key is authenticated in the current session.
    pub fn mgmt_authenticated(&self) -> bool {
        self.session.mgmt_authenticated
    }

    /// The algorithm of the key in `slot`, if any.
    pub fn key_algorithm(&self, slot: u8) -> Option<KeyAlgorithm> {
        self.state.keys.get(&slot).map(|e| e.key.algorithm())
    }

    /// The public key template (`7F49`) of the key in `slot`, if any.
    pub fn public_key_template(&self, slot: u8) -> Option<Vec<u8>> {
        self.state.keys.get(&slot).map(|e| e.key.public_key_template())
    }

    /// The content of a data object (inside tag 53), if present.
    pub fn object(&self, tag: u32) -> Option<&[u8]> {
        self.state.objects.get(&tag).map(Vec::as_slice)
    }

    /// Stores a data object directly, as an issuer would before handing the card out.
    pub fn set_object(&mut self, tag: u32, content: Vec<u8>) -> Result<(), Sw> {
        self.state.objects.insert(tag, content);
        self.persist()
    }

    /// Puts a freshly generated key in `slot` directly (personalisation), returning its
    /// public key template.
    pub fn generate_key_directly(&mut self, slot: u8, alg: KeyAlgorithm) -> Result<Vec<u8>, Sw> {
        self.install_key(slot, alg, PinPolicy::default_for(slot))
    }

    /// The GUID of the card (CHUID tag 34), as configured at the factory.
    pub fn guid(&self) -> [u8; 16] {
        self.state.factory.guid
    }
}

fn with_sw(mut body: Vec<u8>, sw: Sw) -> Vec<u8> {
    body.extend_from_slice(&sw.to_bytes());
    body
}
