//! The carrier contract of ukey.
//!
//! Every carrier family (the built-in software token, vendor PKCS#11 modules, PC/SC smart cards,
//! HID tokens) implements the [`Driver`] and [`Carrier`] traits defined here, so the agent, the
//! custody policy and the CLI can treat them alike. The [`crypto`] module is the host-side core
//! that every driver shares: hashing per mechanism, the SM2 Z value, signature encodings,
//! verification, certificate parsing and request building.
//!
//! Dependency rule: drivers depend on this crate, never on the `ukey` crate; this crate depends on
//! no driver.

pub mod carrier;
pub mod crypto;
pub mod driver;
pub mod error;
pub mod identity;
pub mod mechanism;
pub mod object;
pub mod pin;
pub mod secret;
pub mod uri;

pub use carrier::{Capabilities, Carrier, CertificateImport, Credential, DataObjectWrite, InitRequest, KeyGenRequest};
pub use driver::{CarrierEvent, Driver, DriverStatus, EventSink, Watch};
pub use error::{Error, Result};
pub use identity::{CarrierId, CarrierInfo, CarrierKind};
pub use mechanism::{DEFAULT_SM2_ID, HashAlg, InputForm, KeyAlgorithm, Mechanism, SignInput};
pub use object::{CertificateInfo, CertificateObject, DataObjectInfo, KeyObject, ObjectId, ObjectList, ObjectProblem};
pub use pin::{PinRole, PinState, PinStatus};
pub use secret::{Pin, SecretBytes};
pub use uri::Pkcs11Uri;
