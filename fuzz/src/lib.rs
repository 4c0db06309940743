//! Helpers shared by the fuzz targets and the seed recorder: a card transport that replays
//! recorded (or fuzzed) answers, and the sequence of PIV operations every PIV input drives.

use ukey_api::{
    Carrier, CarrierKind, Credential, Error, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId, Pin, PinRole, Result,
    SignInput,
};
use ukey_iso7816::piv::ManagementKey;
use ukey_iso7816::{ApduPipe, CardTransport, PivCarrier, PivOptions};

/// The PIN the PIV session presents (the virtual card's default).
pub const PIV_PIN: &str = "123456";

/// A card whose answers are given up front; when they run out the card counts as pulled out, so
/// every prefix of a transcript is also a "removed at APDU n" fault.
pub struct ReplayCard {
    atr: Vec<u8>,
    extended: bool,
    answers: std::vec::IntoIter<Vec<u8>>,
}

impl ReplayCard {
    /// Reads a transcript: one flags byte (bit 0: extended APDUs), one ATR length byte and the
    /// ATR, then each answer as a big-endian u16 length and that many bytes. Lengths past the
    /// end are cut, so every byte string is some transcript.
    pub fn from_transcript(data: &[u8]) -> Option<ReplayCard> {
        let (&flags, rest) = data.split_first()?;
        let (&atr_len, rest) = rest.split_first()?;
        let (atr, mut rest) = rest.split_at_checked(usize::from(atr_len)).unwrap_or((rest, &[]));
        let mut answers = Vec::new();
        while let Some((len, tail)) = rest.split_at_checked(2) {
            let len = usize::from(u16::from_be_bytes([len[0], len[1]])).min(tail.len());
            let (answer, tail) = tail.split_at(len);
            answers.push(answer.to_vec());
            rest = tail;
        }
        Some(ReplayCard { atr: atr.to_vec(), extended: flags & 1 != 0, answers: answers.into_iter() })
    }
}

/// Writes a transcript in the form [`ReplayCard::from_transcript`] reads.
pub fn transcript(atr: &[u8], extended: bool, answers: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![u8::from(extended), atr.len() as u8];
    out.extend_from_slice(atr);
    for answer in answers {
        out.extend_from_slice(&(answer.len() as u16).to_be_bytes());
        out.extend_from_slice(answer);
    }
    out
}

impl ApduPipe for ReplayCard {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>> {
        self.answers.next().ok_or(Error::TokenRemoved)
    }
}

impl CardTransport for ReplayCard {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn location(&self) -> String {
        "fuzz reader".into()
    }

    fn supports_extended(&self) -> bool {
        self.extended
    }

    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn ApduPipe) -> Result<()>) -> Result<()> {
        work(self)
    }
}

/// What a holder's session does with a PIV card: open it, read the PIN state and the objects,
/// verify the PIN, sign with every key (EC and RSA mechanisms), generate a key. Each step may
/// fail; none may panic or hang.
pub fn piv_session(transport: Box<dyn CardTransport>) {
    let options = PivOptions { management_key: Some(ManagementKey::default_key()) };
    let Ok(carrier) = PivCarrier::open(transport, CarrierKind::Pcsc, options) else { return };
    let _ = carrier.info();
    let _ = carrier.pin_state();
    let listed = carrier.objects();
    let Ok(pin) = Pin::new(PIV_PIN) else { return };
    let pin = Credential::Pin(pin);
    let _ = carrier.verify_pin(PinRole::User, &pin);
    let keys: Vec<ObjectId> = match &listed {
        Ok(list) => list.keys.iter().map(|k| k.id.clone()).collect(),
        Err(_) => vec![ObjectId(vec![0x9A]), ObjectId(vec![0x9C])],
    };
    for key in keys {
        for mechanism in [Mechanism::EcdsaSha256, Mechanism::RsaPkcs1Sha256] {
            let input = SignInput { digest: vec![0x5A; 32], message: None };
            let _ = carrier.sign(&key, &mechanism, &input, &pin);
        }
    }
    let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, id: None, label: "fuzz".into() };
    let _ = carrier.generate_key(&request, &pin);
}
