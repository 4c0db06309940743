//! HID carriers for ukey: tokens that carry ISO 7816 APDUs in HID reports, reached through
//! hidapi's pure-Rust Linux backend (no system library).
//!
//! Layers, bottom up: [`device`] is the report seam ([`HidDevice`]: write a report, read one
//! with a timeout), implemented for real devices in [`hidapi_device`]; [`framing`] is the
//! CTAPHID packet format (pure, fuzzable); [`exchange`] is the host side of CTAPHID (channels,
//! calls, bounded waits); [`transport`] makes a token a `ukey-iso7816` [`CardTransport`], so the
//! PIV application runs over HID unchanged; [`lock`] gives one operation exclusive use of a
//! device; [`source`] lists devices, [`matching`] picks the ones the carrier catalog knows
//! (`interface = "hid"`, by USB id, with the framing its entry names); [`driver`] is the
//! [`ukey_api::Driver`] and [`watch`] reports insertions and removals by enumeration diff.
//! [`errors`] maps every HID failure onto a contract error.
//!
//! [`CardTransport`]: ukey_iso7816::CardTransport

pub mod device;
pub mod driver;
#[cfg(any(test, feature = "testing"))]
pub mod emulator;
pub mod errors;
pub mod exchange;
pub mod framing;
pub mod hidapi_device;
pub mod lock;
pub mod matching;
pub mod source;
pub mod transport;
pub mod watch;

pub use device::{DeviceError, HidDevice};
pub use driver::HidDriver;
pub use exchange::Timeouts;
pub use framing::Framing;
pub use source::{DeviceSource, HidDeviceInfo};
pub use transport::HidTransport;
