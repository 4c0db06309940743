//! The whole PIV application against a hostile or broken card: every card answer comes from the
//! fuzz input (the way OpenSC's fuzzing reader works), and when the input runs out the card is
//! "removed". Opening the carrier, listing its objects, probing and verifying the PIN, signing
//! and generating a key must each end in a value or an error, never a panic or a hang.
//! Input layout: see `ReplayCard::from_transcript`; seeds are recorded from the virtual PIV card
//! (`cargo run --example record_seeds`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey_fuzz::{ReplayCard, piv_session};

fuzz_target!(|data: &[u8]| {
    if let Some(card) = ReplayCard::from_transcript(data) {
        piv_session(Box::new(card));
    }
});
