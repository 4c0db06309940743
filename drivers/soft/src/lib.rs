//! The built-in software token of ukey.
//!
//! A directory store (default `$XDG_DATA_HOME/ukey/tokens`, or `$UKEY_SOFT_DIR`) holding any
//! number of soft tokens, one file each (`<serial>.token`, see [`format`]). It lets ukey run
//! with no hardware and is the carrier on which PIN lockout is exercised. It always declares
//! itself a *software* carrier (`CarrierInfo::software`), never a compliant hardware carrier.
//!
//! # Security model
//! - Every private key and private data object is sealed (XChaCha20-Poly1305) under a random
//!   token master key. The master key is stored twice, sealed under keys derived with Argon2id
//!   from the user PIN and from the SO PIN ([`kdf::KdfParams`], stored per PIN record).
//! - Each PIN has a persisted retry counter (default 6). A try is written to disk *before* the
//!   PIN is checked and restored only after a right PIN, so killing the process never yields a
//!   free try. Six wrong PINs lock it; the right PIN is then refused too.
//! - A locked user PIN is unblocked with the SO PIN, which sets a new user PIN.
//! - A locked SO PIN leaves only re-initialisation: `initialize` with a new SO PIN and user PIN
//!   wipes every key, certificate and data object (a fresh master key makes the old ciphertexts
//!   useless). While the SO PIN is not locked, re-initialisation needs the current SO PIN.
//! - Tokens are created with PINs the person chooses: there is no default PIN, and no
//!   "must change" flag is set by this driver (a flag set in a file is honoured).
//!
//! # Storage
//! Every changing operation locks the token (`flock` on `<serial>.lock`), re-reads the file, and writes
//! the new state atomically (temp file, fsync, rename, fsync of the directory). Read-only
//! operations (PIN state, object list, public data) re-read the file without the lock: a rename
//! always shows a reader one whole version, and they never wait behind another process's PIN
//! check. A damaged file is refused with [`ukey_api::Error::Corrupt`] naming it, and is never
//! overwritten.

pub mod carrier;
pub mod config;
mod create;
pub mod driver;
pub mod format;
mod fsio;
pub mod kdf;
mod keys;
mod listing;
mod lock;
mod naming;
pub mod pins;
mod random;
mod seal;
mod serde_b64;
mod store;
mod txn;
mod watch;

pub use carrier::SoftToken;
pub use driver::{ENV_SOFT_DIR, SoftDriver};
pub use kdf::KdfParams;
pub use keys::SUPPORTED as SUPPORTED_ALGORITHMS;
pub use listing::{MANUFACTURER, MODEL};
