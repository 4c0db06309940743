//! Status words (ISO 7816-4 §5.1.3, SP 800-73-4 Part 2 §3) the card answers with.

use std::fmt;

/// A status word SW1-SW2. Handlers return `Err(Sw)` to answer with an error and no data.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sw(pub u16);

impl Sw {
    /// Normal processing.
    pub const OK: Sw = Sw(0x9000);
    /// Memory failure: the state could not be persisted.
    pub const MEMORY_FAILURE: Sw = Sw(0x6581);
    /// Wrong length (Lc/Le inconsistent with the command).
    pub const WRONG_LENGTH: Sw = Sw(0x6700);
    /// Last command of a chain expected (a chain was interrupted).
    pub const LAST_COMMAND_EXPECTED: Sw = Sw(0x6883);
    /// Security status not satisfied (PIN not verified, management key not authenticated).
    pub const SECURITY_STATUS: Sw = Sw(0x6982);
    /// Authentication method blocked (retry counter at zero).
    pub const AUTH_BLOCKED: Sw = Sw(0x6983);
    /// Conditions of use not satisfied.
    pub const CONDITIONS_OF_USE: Sw = Sw(0x6985);
    /// Incorrect parameter in the command data field.
    pub const WRONG_DATA: Sw = Sw(0x6A80);
    /// Data object or application not found.
    pub const NOT_FOUND: Sw = Sw(0x6A82);
    /// Not enough memory space.
    pub const NO_SPACE: Sw = Sw(0x6A84);
    /// Incorrect parameters P1-P2.
    pub const WRONG_P1P2: Sw = Sw(0x6A86);
    /// Referenced data (key reference, key in a slot) not found.
    pub const REFERENCE_NOT_FOUND: Sw = Sw(0x6A88);
    /// Instruction code not supported.
    pub const INS_NOT_SUPPORTED: Sw = Sw(0x6D00);
    /// Class not supported.
    pub const CLA_NOT_SUPPORTED: Sw = Sw(0x6E00);

    /// `63Cx`: verification failed, `tries` attempts left.
    pub fn retries(tries: u8) -> Sw {
        Sw(0x63C0 | u16::from(tries.min(15)))
    }

    /// `61xx`: more response bytes are waiting for GET RESPONSE (`00` means 256 or more).
    pub fn bytes_remaining(count: usize) -> Sw {
        Sw(0x6100 | if count >= 256 { 0 } else { count as u16 })
    }

    /// `6Cxx`: wrong Le; `xx` is the exact number of bytes available.
    pub fn wrong_le(available: usize) -> Sw {
        Sw(0x6C00 | (available & 0xFF) as u16)
    }

    /// The two status bytes in transmission order.
    pub fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

impl fmt::Debug for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl fmt::Display for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}
