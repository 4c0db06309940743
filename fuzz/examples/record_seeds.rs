//! Records the PIV seed transcripts for the `piv_card` target from the virtual PIV card of the
//! test rig (tests/virtual-piv), run in-process: the card's real answers to a holder's session,
//! on a card with EC and RSA keys and a plain and a gzip-compressed certificate, in short and
//! extended APDU mode. Run from `fuzz/`: `cargo run --example record_seeds -- seeds/piv_card`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flate2::Compression;
use flate2::write::GzEncoder;
use ukey_api::Result;
use ukey_fuzz::{piv_session, transcript};
use ukey_iso7816::piv::certificate;
use ukey_iso7816::tlv;
use ukey_iso7816::{ApduPipe, CardTransport};
use ukey_vpiv::{ATR, CardConfig, KeyAlgorithm, VirtualPiv};

/// Forwards to the virtual card and keeps every answer.
struct Recorder {
    card: VirtualPiv,
    extended: bool,
    answers: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ApduPipe for Recorder {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>> {
        let answer = self.card.execute(apdu);
        self.answers.lock().expect("recorder lock").push(answer.clone());
        Ok(answer)
    }
}

impl CardTransport for Recorder {
    fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }

    fn location(&self) -> String {
        "virtual PIV (recording)".into()
    }

    fn supports_extended(&self) -> bool {
        self.extended
    }

    fn transaction(&mut self, work: &mut dyn FnMut(&mut dyn ApduPipe) -> Result<()>) -> Result<()> {
        work(self)
    }
}

fn gzip_container(der: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(der).expect("gzip into memory");
    let compressed = gz.finish().expect("gzip into memory");
    let mut out = tlv::encoded(0x70, &compressed);
    tlv::encode(0x71, &[0x01], &mut out);
    tlv::encode(0xFE, &[], &mut out);
    out
}

fn main() {
    let out_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "seeds/piv_card".into()));
    std::fs::create_dir_all(&out_dir).expect("creating the seed directory");
    let cert = include_bytes!("../seeds/x509/k1.der");
    for (name, extended, with_keys) in
        [("empty-short", false, false), ("keys-short", false, true), ("keys-extended", true, true)]
    {
        let mut card = VirtualPiv::new(CardConfig::default()).expect("a default virtual card");
        if with_keys {
            card.generate_key_directly(0x9A, KeyAlgorithm::EccP256).expect("P-256 key in 9A");
            card.generate_key_directly(0x9C, KeyAlgorithm::Rsa2048).expect("RSA key in 9C");
            card.set_object(0x5FC105, certificate::encode(cert)).expect("certificate in 9A");
            card.set_object(0x5FC10A, gzip_container(cert)).expect("compressed certificate in 9C");
        }
        let answers = Arc::new(Mutex::new(Vec::new()));
        piv_session(Box::new(Recorder { card, extended, answers: Arc::clone(&answers) }));
        let answers = answers.lock().expect("recorder lock").clone();
        let path = out_dir.join(name);
        std::fs::write(&path, transcript(&ATR, extended, &answers)).expect("writing a seed");
        println!("{}: {} answers", path.display(), answers.len());
    }
}
