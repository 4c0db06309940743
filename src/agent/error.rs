//! The agent's one error type and how each error travels as a JSON-RPC error object.
//!
//! Clients act on `error.data.kind` (a stable name: the carrier contract's
//! [`ukey_api::Error::kind`] for carrier errors, an agent name such as `NotPaired` otherwise), so
//! the JS client can raise typed errors. Messages say what went wrong and what to do; none ever
//! carries a PIN (carrier errors never do, and the agent never formats a PIN into a message).

use serde_json::{Map, Value, json};

use crate::agent::rpc::RpcError;

/// Result of every service call.
pub type AgentResult<T> = std::result::Result<T, AgentError>;

/// JSON-RPC 2.0 reserved codes, plus the agent's own range (-32000 ..= -32099).
pub mod codes {
    /// The message is not JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// The JSON is not a JSON-RPC request (or the batch is empty or too large).
    pub const INVALID_REQUEST: i32 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// The parameters do not fit the method.
    pub const INVALID_PARAMS: i32 = -32602;
    /// A bug or an unexpected failure inside the agent.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The carrier (or the holder at the PIN dialog) refused or failed; `data.kind` says how.
    pub const CARRIER: i32 = -32000;
    /// The page's origin is not paired (or not for this grant).
    pub const NOT_PAIRED: i32 = -32001;
    /// The method or parameter is not allowed on this transport or for this client.
    pub const FORBIDDEN: i32 = -32002;
    /// `hello` was not called first, or no common protocol version.
    pub const HANDSHAKE: i32 = -32003;
    /// The custody policy refused the use.
    pub const POLICY: i32 = -32004;
    /// The client has too many requests in flight.
    pub const TOO_MANY_REQUESTS: i32 = -32005;
}

/// Everything a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The carrier, the driver or the PIN dialog failed; carries the contract's error.
    #[error(transparent)]
    Carrier(#[from] ukey_api::Error),

    /// A page whose origin is not paired asked for something other than `hello` or `pair`.
    #[error("the origin {origin} is not paired with this agent; call `pair` and let the holder confirm it")]
    NotPaired {
        /// The page's origin.
        origin: String,
    },

    /// A paired origin lacks the grant a method needs.
    #[error("the origin {origin} is not paired for `{grant}`; call `pair` with grants [\"{grant}\"] first")]
    MissingGrant {
        /// The page's origin.
        origin: String,
        /// The grant the method needs.
        grant: &'static str,
    },

    /// Not allowed on this transport or for this client (admin methods on the WebSocket, a PIN
    /// sent by a page).
    #[error("{0}")]
    Forbidden(String),

    /// No such method.
    #[error("method `{0}` does not exist; `hello` lists the methods this agent answers")]
    MethodNotFound(String),

    /// Parameters do not fit the method.
    #[error("invalid params: {0}")]
    InvalidParams(String),

    /// The client skipped the version handshake.
    #[error("call `hello` with the protocol version first (this agent speaks protocol {0})")]
    HandshakeRequired(u32),

    /// No protocol version in common.
    #[error(
        "this agent speaks protocol {supported}; the client asked for {requested:?}; update the client or the agent"
    )]
    VersionMismatch {
        /// What the agent speaks.
        supported: u32,
        /// What the client offered.
        requested: Vec<u32>,
    },

    /// The custody policy refused the use; the reason says who the carrier belongs to and why.
    #[error("refused by the custody policy: {0}")]
    PolicyDenied(String),

    /// The client has too many requests in flight on this connection.
    #[error("too many requests in flight on this connection (at most {0}); wait for answers before sending more")]
    TooManyRequests(usize),

    /// A bug or unexpected failure inside the agent (the message names it; never a secret).
    #[error("internal error in the agent: {0}")]
    Internal(String),
}

impl AgentError {
    /// Stable machine-readable name, used as `error.data.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentError::Carrier(e) => e.kind(),
            AgentError::NotPaired { .. } => "NotPaired",
            AgentError::MissingGrant { .. } => "MissingGrant",
            AgentError::Forbidden(_) => "Forbidden",
            AgentError::MethodNotFound(_) => "MethodNotFound",
            AgentError::InvalidParams(_) => "InvalidParams",
            AgentError::HandshakeRequired(_) => "HandshakeRequired",
            AgentError::VersionMismatch { .. } => "VersionMismatch",
            AgentError::PolicyDenied(_) => "PolicyDenied",
            AgentError::TooManyRequests(_) => "TooManyRequests",
            AgentError::Internal(_) => "Internal",
        }
    }

    /// The JSON-RPC error code.
    pub fn code(&self) -> i32 {
        match self {
            AgentError::Carrier(ukey_api::Error::InvalidInput(_)) => codes::INVALID_PARAMS,
            AgentError::Carrier(_) => codes::CARRIER,
            AgentError::NotPaired { .. } | AgentError::MissingGrant { .. } => codes::NOT_PAIRED,
            AgentError::Forbidden(_) => codes::FORBIDDEN,
            AgentError::MethodNotFound(_) => codes::METHOD_NOT_FOUND,
            AgentError::InvalidParams(_) => codes::INVALID_PARAMS,
            AgentError::HandshakeRequired(_) | AgentError::VersionMismatch { .. } => codes::HANDSHAKE,
            AgentError::PolicyDenied(_) => codes::POLICY,
            AgentError::TooManyRequests(_) => codes::TOO_MANY_REQUESTS,
            AgentError::Internal(_) => codes::INTERNAL_ERROR,
        }
    }

    /// The JSON-RPC error object: code, message, and `data` with `kind` plus the details a client
    /// acts on (tries left after a wrong PIN, which PIN is locked).
    pub fn to_rpc(&self) -> RpcError {
        let mut data = Map::new();
        data.insert("kind".into(), Value::from(self.kind()));
        if let AgentError::Carrier(e) = self {
            match e {
                ukey_api::Error::WrongPin { role, retries_left, .. } => {
                    data.insert("role".into(), json!(role));
                    data.insert("retries_left".into(), json!(retries_left));
                }
                ukey_api::Error::PinLocked { role } | ukey_api::Error::PinMustChange { role } => {
                    data.insert("role".into(), json!(role));
                }
                _ => {}
            }
        }
        if let AgentError::MissingGrant { grant, .. } = self {
            data.insert("grant".into(), Value::from(*grant));
        }
        RpcError { code: self.code(), message: self.to_string(), data: Some(Value::Object(data)) }
    }
}

impl From<serde_json::Error> for AgentError {
    fn from(e: serde_json::Error) -> Self {
        AgentError::InvalidParams(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ukey_api::PinRole;

    #[test]
    fn wrong_pin_carries_tries_left_in_data() {
        let e =
            AgentError::from(ukey_api::Error::WrongPin { role: PinRole::User, retries_left: Some(2), detail: None });
        let rpc = e.to_rpc();
        assert_eq!(rpc.code, codes::CARRIER);
        let data = rpc.data.unwrap();
        assert_eq!(data["kind"], "WrongPin");
        assert_eq!(data["retries_left"], 2);
    }

    #[test]
    fn agent_errors_have_stable_kinds() {
        assert_eq!(
            AgentError::NotPaired { origin: "https://a.example".into() }.to_rpc().data.unwrap()["kind"],
            "NotPaired"
        );
        assert_eq!(AgentError::Forbidden("x".into()).code(), codes::FORBIDDEN);
        assert_eq!(AgentError::Carrier(ukey_api::Error::Cancelled).kind(), "Cancelled");
    }
}
