//! A virtual PIV card (NIST SP 800-73-4) for tests, and the PC/SC test harness around it.
//!
//! The card ([`VirtualPiv`]) is a pure function of its state and a command APDU: it has no I/O of
//! its own, so unit tests drive it directly. [`vpcd`] connects it to vsmartcard's `vpcd` reader
//! driver, which makes it a real card in `pcscd` that OpenSC and ukey's PC/SC driver talk to.
//! [`harness`] is the shared test plumbing (pcscd start, cross-process locks on the vpcd readers,
//! insertion and removal with a bounded wait).
//!
//! This crate is a test fixture: it is never a dependency of the `ukey` binary.

pub mod apdu;
pub mod card;
pub mod config;
pub mod faults;
pub mod harness;
pub mod keys;
pub mod mgmt;
pub mod objects;
pub mod state;
pub mod status;
pub mod tlv;
pub mod vpcd;

mod rng;

pub use card::{CardError, ShortLePolicy, VirtualPiv};
pub use config::CardConfig;
pub use faults::{FaultMode, FaultPlan};
pub use keys::KeyAlgorithm;
pub use mgmt::MgmtAlgorithm;
pub use status::Sw;

/// The ATR the virtual card presents: T=1, historical bytes announcing full/partial DF-name
/// selection, extended Lc/Le and command chaining (ISO 7816-4 card capabilities).
pub const ATR: [u8; 10] = atr_with_tck([0x3B, 0x85, 0x80, 0x01, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x00]);

/// Fills in the ATR check byte TCK (XOR of T0 up to the last historical byte).
const fn atr_with_tck(mut atr: [u8; 10]) -> [u8; 10] {
    let mut tck = 0u8;
    let mut i = 1;
    while i < atr.len() - 1 {
        tck ^= atr[i];
        i += 1;
    }
    atr[atr.len() - 1] = tck;
    atr
}

/// The full PIV application identifier (RID A0 00 00 03 08, PIX 00 00 10 00 01 00).
pub const PIV_AID: [u8; 11] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
