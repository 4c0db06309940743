//! The one place where PKCS#11 return codes become [`ukey_api::Error`].
//!
//! Every cryptoki call in this crate funnels its error through [`map`] (or [`map_login`] for the
//! calls that present a PIN), so a `CKR_*` code means the same thing to the person whatever
//! operation hit it. Messages never contain a PIN: cryptoki's errors carry only the function name
//! and the return code.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::TokenInfo;
use ukey_api::{Error, PinRole};

/// The PIN flags a token reported, kept beside a wrong-PIN error so the helpdesk sees the state
/// (PKCS#11 tokens give flags, not a retry counter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PinFlags {
    /// `CKF_*_PIN_COUNT_LOW`: at least one wrong try since the last success.
    pub count_low: bool,
    /// `CKF_*_PIN_FINAL_TRY`: one more wrong try locks the PIN.
    pub final_try: bool,
    /// `CKF_*_PIN_LOCKED`: the PIN is blocked.
    pub locked: bool,
    /// `CKF_*_PIN_TO_BE_CHANGED`: the PIN must be changed before use.
    pub to_be_changed: bool,
}

impl PinFlags {
    /// The flags of one PIN role from a token's info.
    pub fn from_token(info: &TokenInfo, role: PinRole) -> Self {
        match role {
            PinRole::User => PinFlags {
                count_low: info.user_pin_count_low(),
                final_try: info.user_pin_final_try(),
                locked: info.user_pin_locked(),
                to_be_changed: info.user_pin_to_be_changed(),
            },
            PinRole::So => PinFlags {
                count_low: info.so_pin_count_low(),
                final_try: info.so_pin_final_try(),
                locked: info.so_pin_locked(),
                to_be_changed: info.so_pin_to_be_changed(),
            },
        }
    }

    /// Tries left as far as flags tell: 0 when locked, 1 on the final try, unknown otherwise.
    pub fn retries_left(&self) -> Option<u32> {
        if self.locked {
            Some(0)
        } else if self.final_try {
            Some(1)
        } else {
            None
        }
    }

    /// The flags in PKCS#11 spelling, for error details and `ukey` output.
    pub fn describe(&self, role: PinRole) -> String {
        let prefix = match role {
            PinRole::User => "CKF_USER_PIN",
            PinRole::So => "CKF_SO_PIN",
        };
        let set: Vec<String> = [
            (self.count_low, "COUNT_LOW"),
            (self.final_try, "FINAL_TRY"),
            (self.locked, "LOCKED"),
            (self.to_be_changed, "TO_BE_CHANGED"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| format!("{prefix}_{name}"))
        .collect();
        if set.is_empty() {
            format!("token PIN flags: none of {prefix}_COUNT_LOW/FINAL_TRY/LOCKED/TO_BE_CHANGED set")
        } else {
            format!("token PIN flags: {}", set.join(" "))
        }
    }
}

/// The return code inside a cryptoki error, when there is one.
pub fn rv_of(err: &CkError) -> Option<RvError> {
    match err {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// True for the codes that mean the token (or its session) is gone: the caller drops its session
/// and finds the token again on the next operation.
pub fn is_removal(err: &CkError) -> bool {
    matches!(
        rv_of(err),
        Some(
            RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::SlotIdInvalid
                | RvError::TokenNotRecognized
        )
    )
}

/// True when the session is stuck in an operation ukey did not start in this transaction (a
/// transaction has its session to itself): a search whose `C_FindObjectsFinal` failed, say. The
/// caller drops the session, so the next operation opens a clean one instead of failing with
/// "busy" for the rest of the process (found by tests/fault_injection.rs).
pub fn is_stuck_session(err: &CkError) -> bool {
    matches!(rv_of(err), Some(RvError::OperationActive))
}

/// A cryptoki error as its code's name and meaning (`GeneralError (Some horrible...)`), for
/// status lines: the meaning alone does not tell the helpdesk which code the module returned.
pub fn code_text(err: &CkError) -> String {
    match err {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} returned {rv:?} ({rv})"),
        other => other.to_string(),
    }
}

/// True for the codes that mean a cached object handle went stale (SoftHSM invalidates private
/// key handles on logout; another application may have deleted the object).
pub fn is_stale_handle(err: &CkError) -> bool {
    matches!(rv_of(err), Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid))
}

/// Maps a cryptoki error from an operation that presented no PIN. `during` says what ukey was
/// doing, in words a person understands ("signing with key 01").
pub fn map(err: CkError, during: &str) -> Error {
    map_inner(err, during, None)
}

/// Maps a cryptoki error from a call that presented a PIN of `role` (`C_Login`, `C_SetPIN`,
/// `C_InitPIN`, `C_InitToken`). `flags` are the token's PIN flags read after the failure.
pub fn map_login(err: CkError, during: &str, role: PinRole, flags: Option<PinFlags>) -> Error {
    map_inner(err, during, Some((role, flags)))
}

fn map_inner(err: CkError, during: &str, pin: Option<(PinRole, Option<PinFlags>)>) -> Error {
    let role = pin.map_or(PinRole::User, |(r, _)| r);
    let (rv, function) = match err {
        CkError::Pkcs11(rv, function) => (rv, function),
        CkError::LibraryLoading(e) => return Error::Device(format!("{during}: the module could not be loaded: {e}")),
        CkError::MissingSymbol(name) => {
            return Error::Device(format!("{during}: the library is not a PKCS#11 module (it has no {name})"));
        }
        CkError::NullFunctionPointer => {
            return Error::NotSupported(format!("{during}: the module does not implement this PKCS#11 function"));
        }
        CkError::NotSupported => return Error::NotSupported(format!("{during}: not supported by cryptoki")),
        other => return Error::Device(format!("{during}: {other}")),
    };
    match rv {
        RvError::PinIncorrect => {
            let flags = pin.and_then(|(_, f)| f);
            Error::WrongPin {
                role,
                retries_left: flags.and_then(|f| f.retries_left()),
                detail: Some(
                    flags.map_or_else(|| "the token's PIN flags could not be read".into(), |f| f.describe(role)),
                ),
            }
        }
        RvError::PinLocked => Error::PinLocked { role },
        RvError::PinExpired => Error::PinMustChange { role },
        RvError::PinInvalid => Error::PinRejected("the token refuses the characters of the new PIN".into()),
        RvError::PinLenRange => Error::PinRejected("the token refuses the length of the new PIN".into()),
        RvError::PinTooWeak => Error::PinRejected("the token finds the new PIN too weak".into()),
        RvError::UserNotLoggedIn => Error::LoginRequired(role),
        RvError::UserPinNotInitialized => Error::Device(format!(
            "{during}: the token has no user PIN yet; the helpdesk sets one with `ukey pin unblock`"
        )),
        RvError::UserAlreadyLoggedIn | RvError::UserAnotherAlreadyLoggedIn | RvError::UserTooManyTypes => {
            Error::Busy(format!("{during}: another login is active on the token"))
        }
        RvError::SessionReadWriteSoExists | RvError::SessionReadOnlyExists | RvError::SessionExists => {
            Error::Busy(format!("{during}: other sessions are open on the token; close other applications using it"))
        }
        RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::SlotIdInvalid
        | RvError::TokenNotRecognized => Error::TokenRemoved,
        RvError::TokenWriteProtected | RvError::SessionReadOnly => {
            Error::PermissionDenied(format!("{during}: the token is write-protected"))
        }
        RvError::MechanismInvalid
        | RvError::MechanismParamInvalid
        | RvError::KeyTypeInconsistent
        | RvError::KeyFunctionNotPermitted
        | RvError::FunctionNotSupported
        | RvError::CurveNotSupported
        | RvError::KeySizeRange
        | RvError::DomainParamsInvalid => Error::NotSupported(format!("{during}: the token refuses it ({rv})")),
        RvError::DataLenRange | RvError::DataInvalid => {
            Error::InvalidInput(format!("{during}: the token refuses the data ({rv})"))
        }
        RvError::TemplateIncomplete
        | RvError::TemplateInconsistent
        | RvError::AttributeValueInvalid
        | RvError::AttributeTypeInvalid
        | RvError::AttributeReadOnly => Error::NotSupported(format!("{during}: the token refuses the object ({rv})")),
        RvError::FunctionCanceled | RvError::Cancel => Error::Cancelled,
        RvError::SessionCount | RvError::OperationActive | RvError::FunctionNotParallel | RvError::CantLock => {
            Error::Busy(format!("{during}: the token is busy ({rv})"))
        }
        RvError::DeviceMemory => Error::Device(format!("{during}: the token is full; delete objects and retry")),
        RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid => {
            Error::NotFound(format!("{during}: the object is gone from the token"))
        }
        RvError::ActionProhibited => Error::PermissionDenied(format!("{during}: the token's policy forbids it")),
        RvError::AttributeSensitive | RvError::InformationSensitive => {
            Error::PermissionDenied(format!("{during}: the token keeps that value secret"))
        }
        other => Error::Device(format!("{during}: C_{function:?} failed with {other:?} ({other})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use cryptoki::context::Function;

    fn rv(code: RvError) -> CkError {
        CkError::Pkcs11(code, Function::Login)
    }

    #[test]
    fn wrong_pin_carries_the_flags() {
        let flags = PinFlags { count_low: true, final_try: true, ..Default::default() };
        let err = map_login(rv(RvError::PinIncorrect), "logging in", PinRole::User, Some(flags));
        match &err {
            Error::WrongPin { role: PinRole::User, retries_left: Some(1), detail: Some(d) } => {
                assert!(d.contains("CKF_USER_PIN_COUNT_LOW") && d.contains("CKF_USER_PIN_FINAL_TRY"), "{d}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("1 try left"), "{err}");
    }

    #[test]
    fn wrong_pin_without_flags_still_says_so() {
        let err = map_login(rv(RvError::PinIncorrect), "logging in", PinRole::So, Some(PinFlags::default()));
        assert!(err.to_string().contains("none of CKF_SO_PIN_COUNT_LOW"), "{err}");
    }

    #[test]
    fn removal_codes_become_token_removed() {
        for code in [RvError::DeviceRemoved, RvError::TokenNotPresent, RvError::SessionHandleInvalid] {
            assert!(is_removal(&rv(code)));
            assert!(matches!(map(rv(code), "signing"), Error::TokenRemoved));
        }
        assert!(!is_removal(&rv(RvError::PinIncorrect)));
    }

    #[test]
    fn pin_state_codes() {
        assert!(matches!(map_login(rv(RvError::PinLocked), "x", PinRole::User, None), Error::PinLocked { .. }));
        assert!(matches!(map_login(rv(RvError::PinExpired), "x", PinRole::User, None), Error::PinMustChange { .. }));
        assert!(matches!(map(rv(RvError::PinLenRange), "x"), Error::PinRejected(_)));
        assert!(matches!(map(rv(RvError::MechanismInvalid), "x"), Error::NotSupported(_)));
        assert!(matches!(map(rv(RvError::GeneralError), "x"), Error::Device(_)));
    }
}
