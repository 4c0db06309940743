//! The ISO/IEC 7816-4 APDU layer of ukey and the PIV card application, independent of how APDUs
//! travel (PC/SC readers today, APDU-over-HID tokens later).
//!
//! Layers, bottom up: [`apdu`] encodes commands and parses responses, [`status`] turns status
//! words into contract errors in one place, [`tlv`] reads and writes BER-TLV, [`transport`]
//! defines the [`CardTransport`] seam and the exchange loop (chaining, GET RESPONSE, wrong Le),
//! [`trace`] logs APDUs with PINs redacted. [`piv`] is the PIV application (NIST SP 800-73-4)
//! and [`card_carrier`] makes any PIV card a ukey [`ukey_api::Carrier`].

pub mod apdu;
pub mod atr;
pub mod card_carrier;
pub mod piv;
pub mod status;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tlv;
pub mod trace;
pub mod transport;

pub use apdu::{Command, Le, Response};
pub use card_carrier::{PivCarrier, PivOptions};
pub use status::{Context, Guard, StatusWord};
pub use transport::{ApduPipe, CardTransport, Channel, with_transaction};
