//! Dispatch of the carrier operations: signing and authentication, enrolment, PIN
//! administration. Each lives in its own file; this is the one place that maps names to them.

use serde_json::Value;
use serde_json::value::RawValue;

use crate::agent::error::{AgentError, AgentResult};
use crate::agent::service::{Service, Session};

impl Service {
    /// Runs a carrier operation method (transport and grant were checked by the caller).
    pub(crate) async fn operation(
        &self,
        session: &Session,
        method: &str,
        params: Option<&RawValue>,
    ) -> AgentResult<Value> {
        match method {
            "sign" => self.sign(session, params).await,
            "auth" => self.auth(session, params).await,
            "keys.generate" => self.keys_generate(session, params).await,
            "csr.create" => self.csr_create(session, params).await,
            "certs.import" => self.certs_import(session, params).await,
            "pin.change" => self.pin_change(session, params).await,
            "pin.unblock" => self.pin_unblock(session, params).await,
            "token.init" => self.token_init(session, params).await,
            m if m.starts_with("carrier.") => self.forward(session, m, params).await,
            other => Err(AgentError::MethodNotFound(other.to_string())),
        }
    }
}
