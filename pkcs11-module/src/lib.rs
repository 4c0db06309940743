//! `libukey_pkcs11.so`: a PKCS#11 module that forwards every desktop program's use of a carrier
//! to the holder's ukey agent over its Unix socket.
//!
//! Browsers (NSS), OpenSSL's pkcs11 engine, GnuTLS, ssh and document signers already speak
//! PKCS#11. Loaded into them, this module shows one slot per carrier the agent serves (soft
//! token, vendor PKCS#11 module, PIV card over PC/SC or HID), with the carrier's certificates,
//! public keys and private-key handles; logins are answered by the agent's PIN dialog and every
//! signature passes the agent's custody policy and lands in its audit log, with this program's
//! executable and pid. The module holds no keys and no PINs of its own. Who asks for the PIN (the
//! program's `C_Login`, or the agent at each signature) is the [`pin_mode`].
//!
//! Layout: [`ffi`] is the C boundary (the only `unsafe` code); behind it one file per function
//! group ([`general`], [`slot_token`], [`session`], [`login`], [`object`], [`sign`], [`events`]),
//! the agent client ([`agent`] over [`link`]), the slot and object model ([`slots`],
//! [`objects`], [`mechanisms`]) and the shared state ([`module`]).

pub mod agent;
pub mod events;
pub mod ffi;
pub mod general;
pub mod link;
pub mod logging;
pub mod login;
pub mod mechanisms;
pub mod module;
pub mod object;
pub mod objects;
pub mod pin_mode;
pub mod rv;
pub mod session;
pub mod sign;
pub mod slot_token;
pub mod slots;
pub mod text;
pub mod unsupported;
