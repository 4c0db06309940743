//! The PIV card application (NIST SP 800-73-4, algorithms per SP 800-78-4), host side.
//!
//! [`application`] sends the card commands; the other files hold what the host computes around
//! them: [`objects`] names slots and data objects, [`certificate`] reads and writes certificate
//! objects (gzip included), [`chuid`] identifies the card, [`keys`] turns generated keys into
//! SubjectPublicKeyInfo, [`signing`] pads RSA input and converts ECDSA signatures,
//! [`management`] holds the card management key and its ciphers.

pub mod application;
pub mod certificate;
pub mod chuid;
pub mod keys;
pub mod management;
pub mod objects;
pub mod signing;

pub use application::{PinProbe, Piv, SelectInfo};
pub use management::ManagementKey;
pub use objects::Slot;
