//! ukey's driver for any vendor PKCS#11 module, through `cryptoki`.
//!
//! Most USB keys in the field ship a vendor PKCS#11 module; this crate makes each token behind
//! such a module a ukey [`Carrier`](ukey_api::Carrier). Modules come from ukey's configuration,
//! p11-kit registrations, the carrier catalog, or `UKEY_PKCS11_MODULES` ([`discovery`]); each is
//! loaded once per process ([`module`]); each token becomes a carrier with one shared session
//! and login state ([`session`], [`token`]). Native return codes become contract errors in one
//! place ([`errors`]). SM2 goes through vendor-defined numbers configured per module ([`sm2`],
//! `VENDOR-SM2.md`).
//!
//! The only `unsafe` is in [`raw`], the few direct PKCS#11 calls for vendor numbers cryptoki
//! cannot express.

pub mod config;
pub mod discovery;
pub mod driver;
pub mod errors;
pub mod import;
pub mod keygen;
pub mod module;
pub mod objects;
pub mod pending;
pub mod pin;
pub mod pubkey;
pub mod raw;
pub mod session;
pub mod sign;
pub mod sm2;
pub mod token;
pub mod watch;

pub use config::{ModuleConfig, Pkcs11Config};
pub use discovery::{CatalogModule, DiscoveryOptions, MODULES_ENV};
pub use driver::{ModuleReport, Pkcs11Driver};
pub use sm2::{Sm2Input, Sm2VendorConfig};
pub use token::Pkcs11Carrier;
