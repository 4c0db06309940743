//! Test harness shared by every crate whose tests need a PC/SC card: starts pcscd when it is not
//! running, leases one of vpcd's two virtual readers under a cross-process lock (so tests in
//! different binaries never share a reader), inserts a virtual card and waits until PC/SC sees
//! it, removes it and waits until PC/SC sees it gone. Every wait has a deadline.
//!
//! ```no_run
//! use std::time::Duration;
//! use ukey_vpiv::{CardConfig, VirtualPiv, harness::ReaderLease};
//!
//! let lease = ReaderLease::acquire_any(Duration::from_secs(120))?;
//! let inserted = lease.insert(VirtualPiv::new(CardConfig::default())?)?;
//! // ... talk to the card in reader `lease.reader_name()` ...
//! let (_card, _removal) = inserted.remove()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod insert;
mod locks;
pub mod pcscd;
mod reader;

pub use error::HarnessError;
pub use insert::{CardProcess, InsertedCard};
pub use locks::{LockFile, lock_dir};
pub use reader::{ReaderLease, VPCD_READERS, VirtualReader, wait_for_card};
