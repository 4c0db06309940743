//! Dispatch of the carrier operations (sign, auth, enrolment, PIN administration).

use serde_json::Value;
use serde_json::value::RawValue;

use crate::agent::error::{AgentError, AgentResult};
use crate::agent::service::{Service, Session};

impl Service {
    /// Runs a carrier operation method.
    pub(crate) async fn operation(
        &self,
        _session: &Session,
        method: &str,
        _params: Option<&RawValue>,
    ) -> AgentResult<Value> {
        Err(AgentError::Carrier(ukey_api::Error::NotSupported(format!("`{method}` is not available yet"))))
    }
}
