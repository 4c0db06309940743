//! Status words (SW1 SW2) and their one mapping onto the carrier contract's errors.
//!
//! Every card answer that is not `90 00` goes through [`StatusWord::check`], so the meaning of a
//! status word is decided in exactly one place. The caller says what it was doing
//! ([`Context`]), because the same word means different things: `63 Cx` after VERIFY is a wrong
//! PIN with x tries left, `69 82` is "log in first" for a signature but "authenticate the
//! management key first" for a write.

use std::fmt;

use ukey_api::error::Error;
use ukey_api::pin::PinRole;

/// SW1 SW2 of a response.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

/// Which secret guards the operation a status word answers, so a security error can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Nothing in particular.
    None,
    /// A PIN or PUK: `63Cx`, `6983`, `6982` refer to it.
    Pin(PinRole),
    /// The card's administrative (management) key.
    AdminKey,
}

/// What the command was for, so its errors read well.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Short description of the operation ("read the certificate in slot 9A").
    pub what: &'a str,
    /// The secret that guards it.
    pub guard: Guard,
}

impl<'a> Context<'a> {
    /// An operation guarded by nothing in particular.
    pub fn new(what: &'a str) -> Self {
        Context { what, guard: Guard::None }
    }

    /// An operation guarded by a PIN role.
    pub fn pin(what: &'a str, role: PinRole) -> Self {
        Context { what, guard: Guard::Pin(role) }
    }

    /// An operation guarded by the administrative key.
    pub fn admin(what: &'a str) -> Self {
        Context { what, guard: Guard::AdminKey }
    }
}

impl StatusWord {
    /// `90 00`: the command succeeded.
    pub const SUCCESS: StatusWord = StatusWord(0x9000);
    /// `69 83`: authentication method blocked.
    pub const AUTH_BLOCKED: StatusWord = StatusWord(0x6983);
    /// `69 82`: security status not satisfied.
    pub const SECURITY_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    /// `6A 82`: file or application not found.
    pub const NOT_FOUND: StatusWord = StatusWord(0x6A82);
    /// `69 85`: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    /// `6A 80`: incorrect parameters in the data field.
    pub const WRONG_DATA: StatusWord = StatusWord(0x6A80);
    /// `6A 86`: incorrect P1 P2.
    pub const WRONG_P1P2: StatusWord = StatusWord(0x6A86);

    /// Builds a status word from its two bytes.
    pub fn new(sw1: u8, sw2: u8) -> Self {
        StatusWord(u16::from_be_bytes([sw1, sw2]))
    }

    /// SW1.
    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// SW2.
    pub fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// `90 00`.
    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }

    /// Tries left from a `63 Cx` answer (ISO 7816-4 §5.6: "counter provided by x").
    pub fn retries_left(self) -> Option<u32> {
        (self.sw1() == 0x63 && self.sw2() & 0xF0 == 0xC0).then_some(u32::from(self.sw2() & 0x0F))
    }

    /// The ISO 7816-4 meaning, for messages.
    pub fn meaning(self) -> &'static str {
        match (self.sw1(), self.sw2()) {
            (0x90, 0x00) => "success",
            (0x61, _) => "more response data available",
            (0x62, 0x83) => "selected file or application is deactivated",
            (0x62, _) | (0x63, 0x00) => "warning: the card state may have changed",
            (0x63, x) if x & 0xF0 == 0xC0 => "verification failed",
            (0x64, _) => "execution error, card state unchanged",
            (0x65, 0x81) => "memory failure",
            (0x65, _) => "execution error, card state changed",
            (0x67, 0x00) => "wrong length",
            (0x68, 0x81) => "logical channel not supported",
            (0x68, 0x82) => "secure messaging not supported",
            (0x68, 0x83) => "last command of the chain expected",
            (0x68, 0x84) => "command chaining not supported",
            (0x68, _) => "functions in CLA not supported",
            (0x69, 0x81) => "command incompatible with file structure",
            (0x69, 0x82) => "security status not satisfied",
            (0x69, 0x83) => "authentication method blocked",
            (0x69, 0x84) => "reference data not usable",
            (0x69, 0x85) => "conditions of use not satisfied",
            (0x69, 0x86) => "command not allowed (no current EF)",
            (0x69, 0x87 | 0x88) => "secure messaging data objects missing or incorrect",
            (0x69, _) => "command not allowed",
            (0x6A, 0x80) => "incorrect parameters in the data field",
            (0x6A, 0x81) => "function not supported",
            (0x6A, 0x82) => "file or application not found",
            (0x6A, 0x83) => "record not found",
            (0x6A, 0x84) => "not enough memory space in the file",
            (0x6A, 0x86) => "incorrect parameters P1-P2",
            (0x6A, 0x88) => "referenced data or reference data not found",
            (0x6A, _) => "wrong parameters",
            (0x6B, 0x00) => "wrong parameters P1-P2",
            (0x6C, _) => "wrong Le field",
            (0x6D, 0x00) => "instruction code not supported or invalid",
            (0x6E, 0x00) => "class not supported",
            (0x6F, 0x00) => "no precise diagnosis",
            _ => "unknown status word",
        }
    }

    /// Turns a status word into the contract's error, `Ok(())` for `90 00`.
    ///
    /// This is the only place that decides what a status word means to a person.
    pub fn check(self, ctx: Context<'_>) -> ukey_api::Result<()> {
        if self.is_success() {
            return Ok(());
        }
        let detail = || format!("could not {}: the card answered {} ({})", ctx.what, self, self.meaning());
        let pin_role = match ctx.guard {
            Guard::Pin(role) => Some(role),
            _ => None,
        };
        Err(match (self.sw1(), self.sw2(), pin_role) {
            (0x63, x, Some(role)) if x & 0xF0 == 0xC0 => {
                Error::WrongPin { role, retries_left: Some(u32::from(x & 0x0F)), detail: None }
            }
            (0x63, 0x00, Some(role)) => Error::WrongPin { role, retries_left: None, detail: None },
            (0x69, 0x83 | 0x84, Some(role)) => Error::PinLocked { role },
            (0x69, 0x82, Some(role)) => Error::LoginRequired(role),
            (0x69, 0x82, None) if ctx.guard == Guard::AdminKey => Error::PermissionDenied(format!(
                "{}; the card's management key was not accepted — set UKEY_PIV_MGMT_KEY to this card's key",
                detail()
            )),
            (0x69, 0x82, None) => Error::LoginRequired(PinRole::User),
            (0x6A, 0x82 | 0x88, _) => Error::NotFound(detail()),
            (0x6A, 0x81, _) | (0x6D | 0x6E, 0x00, _) | (0x68, _, _) => Error::NotSupported(detail()),
            (0x6A, 0x80, _) => Error::InvalidInput(detail()),
            _ => Error::Device(detail()),
        })
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}{:02X}", self.sw1(), self.sw2())
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SW({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(sw: u16, ctx: Context<'_>) -> Error {
        StatusWord(sw).check(ctx).unwrap_err()
    }

    #[test]
    fn success_is_ok() {
        assert!(StatusWord(0x9000).check(Context::new("x")).is_ok());
    }

    #[test]
    fn retries_from_63cx() {
        let e = err(0x63C2, Context::pin("verify", PinRole::User));
        assert!(matches!(e, Error::WrongPin { role: PinRole::User, retries_left: Some(2), .. }), "{e:?}");
        assert_eq!(StatusWord(0x63C2).retries_left(), Some(2));
        assert_eq!(StatusWord(0x6300).retries_left(), None);
        let e = err(0x63C0, Context::pin("change PUK", PinRole::So));
        assert!(matches!(e, Error::WrongPin { role: PinRole::So, retries_left: Some(0), .. }));
    }

    #[test]
    fn blocked_and_security() {
        assert!(matches!(err(0x6983, Context::pin("v", PinRole::User)), Error::PinLocked { role: PinRole::User }));
        assert!(matches!(err(0x6982, Context::pin("sign", PinRole::User)), Error::LoginRequired(PinRole::User)));
        let e = err(0x6982, Context::admin("write a certificate"));
        assert!(matches!(e, Error::PermissionDenied(_)));
        assert!(e.to_string().contains("UKEY_PIV_MGMT_KEY"));
        // Without a PIN context a blocked method is a device error that names the word.
        let e = err(0x6983, Context::new("select"));
        assert!(matches!(e, Error::Device(_)));
        assert!(e.to_string().contains("6983"));
    }

    #[test]
    fn not_found_and_not_supported() {
        let e = err(0x6A82, Context::new("read the certificate in slot 9A"));
        assert!(matches!(e, Error::NotFound(_)));
        assert!(e.to_string().contains("slot 9A"));
        assert!(matches!(err(0x6D00, Context::new("x")), Error::NotSupported(_)));
        assert!(matches!(err(0x6E00, Context::new("x")), Error::NotSupported(_)));
        assert!(matches!(err(0x6A80, Context::new("x")), Error::InvalidInput(_)));
    }

    #[test]
    fn bogus_words_are_device_errors_with_the_word() {
        for sw in [0x0000u16, 0x1234, 0xFFFF, 0x6F00, 0x6581] {
            let e = err(sw, Context::new("do it"));
            assert!(matches!(e, Error::Device(_)), "{sw:04X}");
            assert!(e.to_string().contains(&format!("{sw:04X}")));
        }
    }
}
