//! The factory configuration of a virtual card: what it holds when new and after a reset.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::mgmt::MgmtAlgorithm;
use crate::rng;

/// The default PIV application PIN of common PIV cards.
pub const DEFAULT_PIN: &[u8] = b"123456";
/// The default PIN unblocking key.
pub const DEFAULT_PUK: &[u8] = b"12345678";
/// The default 3DES management key `0102030405060708` three times.
pub const DEFAULT_MGMT_KEY: [u8; 24] = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];

/// Factory settings of a card. Debug redacts the PIN, PUK and management key.
#[derive(Clone, Serialize, Deserialize)]
pub struct CardConfig {
    /// The PIV application PIN (6 to 8 ASCII digits).
    #[serde(with = "crate::state::hex_secret")]
    pub pin: Zeroizing<Vec<u8>>,
    /// The PUK (1 to 8 bytes; padded with FF to 8 as hosts send it).
    #[serde(with = "crate::state::hex_secret")]
    pub puk: Zeroizing<Vec<u8>>,
    /// PIN retry limit (SP 800-73-4 leaves the number to the issuer; 3 is usual).
    pub pin_tries: u8,
    /// PUK retry limit.
    pub puk_tries: u8,
    /// Algorithm of the card management key 9B.
    pub mgmt_algorithm: MgmtAlgorithm,
    /// The card management key.
    #[serde(with = "crate::state::hex_secret")]
    pub mgmt_key: Zeroizing<Vec<u8>>,
    /// The card's GUID in the CHUID (tag 34): hosts use it as the card serial.
    pub guid: [u8; 16],
}

impl Default for CardConfig {
    fn default() -> Self {
        CardConfig {
            pin: Zeroizing::new(DEFAULT_PIN.to_vec()),
            puk: Zeroizing::new(DEFAULT_PUK.to_vec()),
            pin_tries: 3,
            puk_tries: 3,
            mgmt_algorithm: MgmtAlgorithm::Tdes,
            mgmt_key: Zeroizing::new(DEFAULT_MGMT_KEY.to_vec()),
            guid: rng::bytes::<16>(),
        }
    }
}

impl fmt::Debug for CardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardConfig")
            .field("pin", &"<redacted>")
            .field("puk", &"<redacted>")
            .field("pin_tries", &self.pin_tries)
            .field("puk_tries", &self.puk_tries)
            .field("mgmt_algorithm", &self.mgmt_algorithm)
            .field("mgmt_key", &"<redacted>")
            .field("guid", &hex::encode(self.guid))
            .finish()
    }
}

/// Why a configuration cannot make a card.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The PIN is not 6 to 8 digits.
    #[error("the PIN must be 6 to 8 digits (SP 800-73-4 §2.4.3)")]
    BadPin,
    /// The PUK is empty or longer than 8 bytes.
    #[error("the PUK must be 1 to 8 bytes")]
    BadPuk,
    /// A retry limit outside 1..=15 (63Cx can report at most 15).
    #[error("retry limits must be between 1 and 15")]
    BadTries,
    /// The management key length does not fit its algorithm.
    #[error("the management key must be {expected} bytes for {algorithm:?}")]
    BadMgmtKey {
        /// The algorithm configured.
        algorithm: MgmtAlgorithm,
        /// Its key length.
        expected: usize,
    },
}

impl CardConfig {
    /// Checks that the settings make a card a host can use.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(6..=8).contains(&self.pin.len()) || !self.pin.iter().all(u8::is_ascii_digit) {
            return Err(ConfigError::BadPin);
        }
        if self.puk.is_empty() || self.puk.len() > 8 {
            return Err(ConfigError::BadPuk);
        }
        if !(1..=15).contains(&self.pin_tries) || !(1..=15).contains(&self.puk_tries) {
            return Err(ConfigError::BadTries);
        }
        if self.mgmt_key.len() != self.mgmt_algorithm.key_len() {
            return Err(ConfigError::BadMgmtKey {
                algorithm: self.mgmt_algorithm,
                expected: self.mgmt_algorithm.key_len(),
            });
        }
        Ok(())
    }
}

/// Pads a PIN or PUK with FF to the 8 bytes carried in VERIFY and friends.
pub fn pad_reference(value: &[u8]) -> Zeroizing<[u8; 8]> {
    let mut out = Zeroizing::new([0xFFu8; 8]);
    for (dst, src) in out.iter_mut().zip(value) {
        *dst = *src;
    }
    out
}
