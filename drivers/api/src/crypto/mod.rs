//! The host-side crypto core shared by every driver: hashing per mechanism, the SM2 Z value,
//! signature encodings, verification, certificate parsing, and CSR / certificate building with a
//! key that stays on its carrier.

pub mod cert;
pub mod encoding;
pub mod keyinfo;
