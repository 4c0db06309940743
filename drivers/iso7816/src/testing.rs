//! A scripted card for unit tests: it plays back APDU exchanges written from the standards, so
//! the APDU layer and card applications can be tested byte for byte (and against garbage
//! answers) without a reader. Integration tests use the real PC/SC stack instead.
//!
//! Expected commands are hex strings in which `..` matches any byte (for random challenges).
//! A command that does not match the script panics with both sides shown: it is a test failure.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ukey_api::{Error, Result};

use crate::transport::{ApduPipe, CardTransport};

type Responder = Box<dyn FnMut(&[u8]) -> Result<Vec<u8>> + Send>;

enum Step {
    Once(String, Responder),
    Forever(String, Responder),
}

/// A card that answers from a script.
pub struct ScriptedCard {
    steps: VecDeque<Step>,
    atr: Vec<u8>,
    extended: bool,
    log: Arc<Mutex<Vec<Vec<u8>>>>,
    transactions: usize,
}

impl Default for ScriptedCard {
    fn default() -> Self {
        Self::new()
    }
}

fn decode(hex_text: &str) -> Vec<u8> {
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap_or_else(|e| panic!("bad hex in script `{hex_text}`: {e}"))
}

fn matches(pattern: &str, apdu: &[u8]) -> bool {
    let pattern: String = pattern.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    let actual = hex::encode_upper(apdu);
    if pattern.ends_with('*') {
        let p = &pattern[..pattern.len() - 1];
        return actual.len() >= p.len() && p.chars().zip(actual.chars()).all(|(p, a)| p == '.' || p == a);
    }
    pattern.len() == actual.len() && pattern.chars().zip(actual.chars()).all(|(p, a)| p == '.' || p == a)
}

impl ScriptedCard {
    /// An empty script with a short-APDU ATR.
    pub fn new() -> Self {
        ScriptedCard {
            steps: VecDeque::new(),
            atr: vec![0x3b, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xff, 0x01, 0x00, 0x0B],
            extended: false,
            log: Arc::new(Mutex::new(Vec::new())),
            transactions: 0,
        }
    }

    /// The card takes extended-length APDUs.
    pub fn extended(mut self) -> Self {
        self.extended = true;
        self
    }

    /// Expects `command` (hex, `..` = any byte, trailing `*` = any rest) and answers `response`.
    pub fn expect(self, command: &str, response: &str) -> Self {
        let r = decode(response);
        self.expect_with(command, move |_| Ok(r.clone()))
    }

    /// Expects `command` and answers what `respond` computes from it (or fails with its error,
    /// as a removed card would).
    pub fn expect_with(
        mut self,
        command: &str,
        respond: impl FnMut(&[u8]) -> Result<Vec<u8>> + Send + 'static,
    ) -> Self {
        self.steps.push_back(Step::Once(command.to_string(), Box::new(respond)));
        self
    }

    /// Expects `command` and fails the transmission with `error`.
    pub fn fail(self, command: &str, error: fn() -> Error) -> Self {
        self.expect_with(command, move |_| Err(error()))
    }

    /// From here on answers every `command` with `response`, forever.
    pub fn repeat_forever(mut self, command: &str, response: &str) -> Self {
        let r = decode(response);
        self.steps.push_back(Step::Forever(command.to_string(), Box::new(move |_| Ok(r.clone()))));
        self
    }

    /// From here on answers every command starting with `prefix` with `response`, forever.
    pub fn repeat_forever_prefix(self, prefix: &str, response: &str) -> Self {
        self.repeat_forever(&format!("{prefix}*"), response)
    }

    /// Every command sent so far, for tests that count or inspect them.
    pub fn sent(&self) -> Arc<Mutex<Vec<Vec<u8>>>> {
        self.log.clone()
    }

    /// Number of transactions opened.
    pub fn transactions(&self) -> usize {
        self.transactions
    }

    /// Panics unless every scripted once-step was used.
    pub fn assert_done(&self) {
        let left: Vec<&str> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Once(c, _) => Some(c.as_str()),
                Step::Forever(..) => None,
            })
            .collect();
        assert!(left.is_empty(), "scripted card still expects: {left:?}");
    }

    fn answer(&mut self, apdu: &[u8]) -> Result<Vec<u8>> {
        if let Ok(mut log) = self.log.lock() {
            log.push(apdu.to_vec());
        }
        match self.steps.front_mut() {
            Some(Step::Once(pattern, respond)) => {
                assert!(
                    matches(pattern, apdu),
                    "scripted card expected {pattern}\n                      got {}",
                    hex::encode_upper(apdu)
                );
                let result = respond(apdu);
                self.steps.pop_front();
                result
            }
            Some(Step::Forever(pattern, respond)) => {
                assert!(
                    matches(pattern, apdu),
                    "scripted card expected {pattern} (repeating)\n                      got {}",
                    hex::encode_upper(apdu)
                );
                respond(apdu)
            }
            None => panic!("scripted card got {} after the end of its script", hex::encode_upper(apdu)),
        }
    }
}

struct Pipe<'a>(&'a mut ScriptedCard);

impl ApduPipe for Pipe<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>> {
        self.0.answer(apdu)
    }
}

impl CardTransport for ScriptedCard {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn location(&self) -> String {
        "scripted card".into()
    }

    fn supports_extended(&self) -> bool {
        self.extended
    }

    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn ApduPipe) -> Result<()>) -> Result<()> {
        self.transactions += 1;
        work(&mut Pipe(self))
    }
}
