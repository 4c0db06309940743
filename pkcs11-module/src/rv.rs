//! PKCS#11 return values for everything behind the FFI boundary, and the one place that turns an
//! agent's answer into the `CKR_*` code a program understands.
//!
//! Every safe function returns [`P11Result`]: `Err` carries the `CK_RV` the FFI layer hands back
//! unchanged, so the code that knows *why* something failed also picks the code.

use cryptoki_sys::*;

use crate::link::LinkError;

/// The result of every function behind the FFI boundary.
pub type P11Result<T> = Result<T, CK_RV>;

/// What the calling operation was, because one agent error means different codes in different
/// functions (an unknown carrier is a removed token when signing, a missing slot when listing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Listing carriers, reading PIN state or objects.
    Read,
    /// `C_Login`.
    Login,
    /// `C_Sign` / `C_SignFinal`.
    Sign,
}

/// The `CKR_*` code for a failed agent call.
pub fn for_link_error(err: &LinkError, context: Context) -> CK_RV {
    match err {
        LinkError::NotRunning(_) => CKR_DEVICE_REMOVED,
        LinkError::Io(_) | LinkError::Protocol(_) => CKR_DEVICE_ERROR,
        LinkError::LoginLost => CKR_USER_NOT_LOGGED_IN,
        LinkError::Rpc { kind, .. } => for_agent_kind(kind, context),
    }
}

/// The `CKR_*` code for an agent error's `data.kind`.
pub fn for_agent_kind(kind: &str, context: Context) -> CK_RV {
    match kind {
        "WrongPin" => CKR_PIN_INCORRECT,
        "PinLocked" => CKR_PIN_LOCKED,
        "PinMustChange" => CKR_PIN_EXPIRED,
        "PinRejected" => CKR_PIN_INVALID,
        "TokenRemoved" => CKR_DEVICE_REMOVED,
        "Cancelled" => CKR_FUNCTION_CANCELED,
        // The holder's custody policy said no: to a program this is a refusal of the request.
        "PolicyDenied" | "PermissionDenied" | "Forbidden" => CKR_FUNCTION_REJECTED,
        "NotFound" => match context {
            Context::Sign => CKR_KEY_HANDLE_INVALID,
            Context::Read | Context::Login => CKR_TOKEN_NOT_PRESENT,
        },
        "NotSupported" => match context {
            Context::Sign => CKR_MECHANISM_INVALID,
            Context::Read | Context::Login => CKR_FUNCTION_NOT_SUPPORTED,
        },
        "InvalidInput" | "InvalidParams" => match context {
            Context::Sign => CKR_DATA_INVALID,
            Context::Read | Context::Login => CKR_ARGUMENTS_BAD,
        },
        "Busy" | "Timeout" | "TooManyRequests" => CKR_FUNCTION_FAILED,
        _ => CKR_DEVICE_ERROR,
    }
}

/// The symbolic name of a return value, for debug logs.
pub fn name(rv: CK_RV) -> &'static str {
    match rv {
        CKR_OK => "CKR_OK",
        CKR_ARGUMENTS_BAD => "CKR_ARGUMENTS_BAD",
        CKR_BUFFER_TOO_SMALL => "CKR_BUFFER_TOO_SMALL",
        CKR_CRYPTOKI_NOT_INITIALIZED => "CKR_CRYPTOKI_NOT_INITIALIZED",
        CKR_CRYPTOKI_ALREADY_INITIALIZED => "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        CKR_SESSION_HANDLE_INVALID => "CKR_SESSION_HANDLE_INVALID",
        CKR_SLOT_ID_INVALID => "CKR_SLOT_ID_INVALID",
        CKR_TOKEN_NOT_PRESENT => "CKR_TOKEN_NOT_PRESENT",
        CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN",
        CKR_USER_ALREADY_LOGGED_IN => "CKR_USER_ALREADY_LOGGED_IN",
        CKR_PIN_INCORRECT => "CKR_PIN_INCORRECT",
        CKR_PIN_LOCKED => "CKR_PIN_LOCKED",
        CKR_FUNCTION_CANCELED => "CKR_FUNCTION_CANCELED",
        CKR_FUNCTION_REJECTED => "CKR_FUNCTION_REJECTED",
        CKR_FUNCTION_NOT_SUPPORTED => "CKR_FUNCTION_NOT_SUPPORTED",
        CKR_MECHANISM_INVALID => "CKR_MECHANISM_INVALID",
        CKR_MECHANISM_PARAM_INVALID => "CKR_MECHANISM_PARAM_INVALID",
        CKR_KEY_HANDLE_INVALID => "CKR_KEY_HANDLE_INVALID",
        CKR_KEY_TYPE_INCONSISTENT => "CKR_KEY_TYPE_INCONSISTENT",
        CKR_OBJECT_HANDLE_INVALID => "CKR_OBJECT_HANDLE_INVALID",
        CKR_OPERATION_ACTIVE => "CKR_OPERATION_ACTIVE",
        CKR_OPERATION_NOT_INITIALIZED => "CKR_OPERATION_NOT_INITIALIZED",
        CKR_DEVICE_ERROR => "CKR_DEVICE_ERROR",
        CKR_DEVICE_REMOVED => "CKR_DEVICE_REMOVED",
        CKR_DATA_INVALID => "CKR_DATA_INVALID",
        CKR_DATA_LEN_RANGE => "CKR_DATA_LEN_RANGE",
        CKR_ATTRIBUTE_TYPE_INVALID => "CKR_ATTRIBUTE_TYPE_INVALID",
        CKR_ATTRIBUTE_SENSITIVE => "CKR_ATTRIBUTE_SENSITIVE",
        CKR_NO_EVENT => "CKR_NO_EVENT",
        CKR_GENERAL_ERROR => "CKR_GENERAL_ERROR",
        CKR_FUNCTION_FAILED => "CKR_FUNCTION_FAILED",
        _ => "CKR_(other)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_errors_map_to_codes_programs_act_on() {
        assert_eq!(for_agent_kind("WrongPin", Context::Login), CKR_PIN_INCORRECT);
        assert_eq!(for_agent_kind("Cancelled", Context::Sign), CKR_FUNCTION_CANCELED);
        assert_eq!(for_agent_kind("PolicyDenied", Context::Sign), CKR_FUNCTION_REJECTED);
        assert_eq!(for_agent_kind("NotFound", Context::Read), CKR_TOKEN_NOT_PRESENT);
        assert_eq!(for_agent_kind("SomethingNew", Context::Read), CKR_DEVICE_ERROR);
    }
}
