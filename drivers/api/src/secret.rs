//! Secret values: PINs and key bytes live in zeroizing buffers and never print.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Bytes that are wiped from memory when dropped (private keys, session secrets, data objects).
pub type SecretBytes = Zeroizing<Vec<u8>>;

/// Longest PIN ukey accepts from anyone; carriers may allow less.
pub const MAX_PIN_LEN: usize = 64;

/// A PIN, SO PIN or PUK.
///
/// The value is wiped on drop, its `Debug` prints only a placeholder, and it is exposed only at
/// the final call through [`Pin::expose`].
#[derive(Clone, Zeroize)]
#[zeroize(drop)]
pub struct Pin(String);

impl Pin {
    /// Takes ownership of a PIN value, refusing values no carrier would accept (empty, longer
    /// than [`MAX_PIN_LEN`], containing control characters). A trailing newline, as left by a
    /// PIN file or a terminal, is removed first.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let mut value: String = value.into();
        while value.ends_with('\n') || value.ends_with('\r') {
            value.pop();
        }
        let pin = Pin(value);
        if pin.0.is_empty() {
            return Err(Error::PinRejected("the PIN is empty; enter at least one character".into()));
        }
        if pin.0.chars().count() > MAX_PIN_LEN {
            return Err(Error::PinRejected(format!("the PIN is longer than {MAX_PIN_LEN} characters")));
        }
        if pin.0.chars().any(char::is_control) {
            return Err(Error::PinRejected("the PIN contains control characters".into()));
        }
        Ok(pin)
    }

    /// The PIN text, for the one call that hands it to the carrier.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The PIN bytes, for the one call that hands it to the carrier.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Number of characters, for carrier length rules (the value itself stays hidden).
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    /// Always false for a constructed PIN; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

impl PartialEq for Pin {
    /// Constant-time comparison, so comparing PINs leaks no timing.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Wraps a byte vector so it is wiped on drop.
pub fn secret_bytes(bytes: Vec<u8>) -> SecretBytes {
    Zeroizing::new(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_value() {
        let pin = Pin::new("sentinel-4711").unwrap();
        assert!(!format!("{pin:?}").contains("4711"));
    }

    #[test]
    fn empty_and_control_pins_are_refused() {
        assert!(matches!(Pin::new(""), Err(Error::PinRejected(_))));
        assert!(matches!(Pin::new("\n"), Err(Error::PinRejected(_))));
        assert!(matches!(Pin::new("12\u{7}34"), Err(Error::PinRejected(_))));
        assert!(matches!(Pin::new("x".repeat(65)), Err(Error::PinRejected(_))));
    }

    #[test]
    fn trailing_newline_is_trimmed() {
        assert_eq!(Pin::new("1234\n").unwrap().expose(), "1234");
    }
}
