//! Fault modes for fault-injection tests: a card that vanishes mid-operation, or answers
//! garbage a host must survive (truncated TLV, wrong lengths, endless `61xx`, bogus status words).

use std::fmt;
use std::str::FromStr;

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// Close the vpcd connection instead of answering: the card is "pulled out".
    Drop,
    /// Answer only the first half of the response data, with `9000`.
    TruncatedTlv,
    /// Answer a response whose outer TLV claims more bytes than follow, with `9000`.
    WrongLengths,
    /// Answer every command (GET RESPONSE included) with 16 bytes and `6110`, forever.
    EndlessGetResponse,
    /// Answer a status word no standard defines (`1234`) and no data.
    BogusStatus,
    /// Never answer: the card stops in the middle of the command, until its connection closes
    /// (pcscd killed, the card removed). For tests that kill pcscd mid-transaction at a known
    /// APDU; [`crate::vpcd::SharedCard::wait_until`] tells when the card got there.
    Hang,
}

/// A fault mode and the APDU from which it applies (1 = the first APDU the card sees after
/// insertion; counting includes SELECT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultPlan {
    /// The fault, or none.
    pub mode: Option<FaultMode>,
    /// First APDU number the fault applies to.
    pub from_apdu: u64,
}

/// What the transport does with one APDU under a plan.
#[derive(Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Send these bytes as the response.
    Answer(Vec<u8>),
    /// Close the connection without answering.
    Drop,
    /// Answer nothing until the connection closes.
    Hang,
}

impl FaultPlan {
    /// No fault: the card behaves.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// `mode` from the `from_apdu`-th APDU on.
    pub fn at(mode: FaultMode, from_apdu: u64) -> Self {
        FaultPlan { mode: Some(mode), from_apdu }
    }

    /// Turns the card's honest `response` to APDU number `apdu_number` into what the plan says.
    pub fn apply(&self, apdu_number: u64, response: Vec<u8>) -> FaultAction {
        let Some(mode) = self.mode else {
            return FaultAction::Answer(response);
        };
        if apdu_number < self.from_apdu {
            return FaultAction::Answer(response);
        }
        let (data, sw) = response.split_at(response.len().saturating_sub(2));
        let ok = [0x90, 0x00];
        FaultAction::Answer(match mode {
            FaultMode::Drop => return FaultAction::Drop,
            FaultMode::Hang => return FaultAction::Hang,
            FaultMode::TruncatedTlv => {
                let mut out = data.get(..data.len() / 2).unwrap_or_default().to_vec();
                out.extend_from_slice(if data.is_empty() { sw } else { &ok });
                out
            }
            FaultMode::WrongLengths => {
                let mut out = data.to_vec();
                // Claim 0x7F bytes more than the response carries.
                let at = match out.get(1).copied() {
                    Some(len) if len < 0x80 => Some((1, 0x7F)),
                    Some(0x81 | 0x82) if out.len() > 2 => Some((2, 0xFF)),
                    _ => None,
                };
                match at.and_then(|(i, v)| out.get_mut(i).map(|b| *b = v)) {
                    Some(()) => {}
                    None => out = vec![0x53, 0x82, 0xFF, 0xFF, 0x70],
                }
                out.extend_from_slice(&ok);
                out
            }
            FaultMode::EndlessGetResponse => {
                let mut out = vec![0xA5; 16];
                out.extend_from_slice(&[0x61, 0x10]);
                out
            }
            FaultMode::BogusStatus => vec![0x12, 0x34],
        })
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            None => write!(f, "none"),
            Some(mode) => write!(f, "{}@{}", mode_name(mode), self.from_apdu),
        }
    }
}

fn mode_name(mode: FaultMode) -> &'static str {
    match mode {
        FaultMode::Drop => "drop",
        FaultMode::TruncatedTlv => "truncated-tlv",
        FaultMode::WrongLengths => "wrong-lengths",
        FaultMode::EndlessGetResponse => "endless-61xx",
        FaultMode::BogusStatus => "bogus-sw",
        FaultMode::Hang => "hang",
    }
}

/// A fault specification that does not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "bad fault '{0}': use none, or MODE@N with MODE one of drop, truncated-tlv, wrong-lengths, endless-61xx, bogus-sw, hang and N the first APDU number (1 = first)"
)]
pub struct FaultParseError(String);

impl FromStr for FaultPlan {
    type Err = FaultParseError;

    /// Parses `none` or `MODE@N` (`@N` optional, default 1), e.g. `drop@5`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(FaultPlan::none());
        }
        let (name, from) = match s.split_once('@') {
            Some((name, n)) => (name, n.parse::<u64>().map_err(|_| FaultParseError(s.to_string()))?),
            None => (s, 1),
        };
        let mode = [
            FaultMode::Drop,
            FaultMode::TruncatedTlv,
            FaultMode::WrongLengths,
            FaultMode::EndlessGetResponse,
            FaultMode::BogusStatus,
            FaultMode::Hang,
        ]
        .into_iter()
        .find(|m| mode_name(*m) == name)
        .ok_or_else(|| FaultParseError(s.to_string()))?;
        if from == 0 {
            return Err(FaultParseError(s.to_string()));
        }
        Ok(FaultPlan::at(mode, from))
    }
}
