//! The PC/SC driver of ukey: readers through pcscd, hot-plug, transactions, and the PIV card
//! application (from `ukey-iso7816`) on the cards in them.
//!
//! [`context`] keeps a PC/SC context valid across pcscd restarts, [`transport`] makes a card a
//! [`ukey_iso7816::CardTransport`], [`reader_watch`] reports insertions and removals,
//! [`driver`] is the [`ukey_api::Driver`], [`errors`] maps PC/SC codes onto contract errors.

pub mod context;
pub mod driver;
pub mod errors;
pub mod reader_watch;
pub mod transport;

pub use context::PcscContext;
pub use driver::{PcscDriver, open_carrier};
pub use transport::PcscTransport;
