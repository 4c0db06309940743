//! PIN administration and initialisation, on the Unix socket only: `pin.change`, `pin.unblock`,
//! `token.init`. PINs come from the local client (the CLI's own prompt or PIN files) or, when
//! absent, from the holder through pinentry.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use ukey_api::{CarrierId, Credential, Error, InitRequest, Pin, PinRole};

use crate::agent::carriers::CarrierSlot;
use crate::agent::consent::Purpose;
use crate::agent::credentials::{Use, settle, supplied_pin};
use crate::agent::error::{AgentError, AgentResult};
use crate::agent::gate::Operation;
use crate::agent::service::{Service, Session, parse_params};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeParams {
    token: String,
    #[serde(default)]
    role: Option<PinRole>,
    #[serde(default)]
    pin: Option<Zeroizing<String>>,
    #[serde(default)]
    new_pin: Option<Zeroizing<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnblockParams {
    token: String,
    #[serde(default)]
    so_pin: Option<Zeroizing<String>>,
    #[serde(default)]
    new_pin: Option<Zeroizing<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitParams {
    token: String,
    label: String,
    #[serde(default)]
    so_pin: Option<Zeroizing<String>>,
    #[serde(default)]
    user_pin: Option<Zeroizing<String>>,
}

fn admin_use(
    slot: &std::sync::Arc<CarrierSlot>,
    operation: Operation,
    role: PinRole,
    supplied: Option<Pin>,
) -> Use<'_> {
    Use { operation, slot, cert: None, key: None, data_sm3: None, detail: None, role, supplied, protected_path: false }
}

impl Service {
    /// Asks the holder for a new PIN (twice) unless the client supplied one.
    async fn new_pin_for(
        &self,
        session: &Session,
        slot: &CarrierSlot,
        operation: Operation,
        supplied: Option<Pin>,
    ) -> AgentResult<Pin> {
        if let Some(p) = supplied {
            return Ok(p);
        }
        let purpose = Purpose {
            client: &session.client,
            operation,
            carrier: slot.info(),
            subject: None,
            data_sm3: None,
            detail: None,
            role: PinRole::User,
        };
        Ok(self.consent.new_pin(&purpose, slot.removed()).await?)
    }

    /// Runs a multi-step admin operation between the gate's authorize and record.
    async fn gated<T>(
        &self,
        session: &Session,
        u: &Use<'_>,
        work: impl Future<Output = AgentResult<T>>,
    ) -> AgentResult<T> {
        let ctx = self.use_context(session, u);
        let permit = self.permit(&ctx, u.slot).await?;
        let result = work.await;
        settle(permit, result).await
    }

    /// `pin.change`
    pub(crate) async fn pin_change(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: ChangeParams = parse_params(params)?;
        let role = p.role.unwrap_or(PinRole::User);
        let slot = self.carriers.get(&CarrierId::from_string(p.token))?;
        let new_supplied = supplied_pin(p.new_pin)?;
        let u = admin_use(&slot, Operation::ChangePin, role, supplied_pin(p.pin)?);
        let check = Use { supplied: u.supplied.clone(), ..admin_use(&slot, Operation::ChangePin, role, None) };
        self.gated(session, &u, async {
            // Current PIN first (re-asked after a wrong entry), then the new one.
            let old = self
                .credential_loop(session, &check, move |c, cred| {
                    c.verify_pin(role, cred)?;
                    Ok(cred.clone())
                })
                .await?;
            let new = self.new_pin_for(session, &slot, Operation::ChangePin, new_supplied).await?;
            slot.run(move |c| c.change_pin(role, &old, &new)).await?;
            self.consent.cache.wipe_carrier(&slot.info().id);
            Ok(json!({ "changed": true }))
        })
        .await
    }

    /// `pin.unblock`
    pub(crate) async fn pin_unblock(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: UnblockParams = parse_params(params)?;
        let slot = self.carriers.get(&CarrierId::from_string(p.token))?;
        let new_supplied = supplied_pin(p.new_pin)?;
        let u = admin_use(&slot, Operation::UnblockPin, PinRole::So, supplied_pin(p.so_pin)?);
        self.gated(session, &u, async {
            let new = self.new_pin_for(session, &slot, Operation::UnblockPin, new_supplied).await?;
            self.credential_loop(session, &u, move |c, so| c.unblock_pin(so, &new)).await?;
            self.consent.cache.wipe_carrier(&slot.info().id);
            Ok(json!({ "unblocked": true }))
        })
        .await
    }

    /// `token.init`
    pub(crate) async fn token_init(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: InitParams = parse_params(params)?;
        let label = p.label.trim().to_string();
        if label.is_empty() || label.chars().count() > 32 || label.chars().any(char::is_control) {
            return Err(AgentError::InvalidParams("the label must be 1 to 32 printable characters".into()));
        }
        let slot = self.carriers.get(&CarrierId::from_string(p.token))?;
        let user_supplied = supplied_pin(p.user_pin)?;
        let u = admin_use(&slot, Operation::Initialize, PinRole::So, supplied_pin(p.so_pin)?);
        self.gated(session, &u, async {
            let user_pin = self.new_pin_for(session, &slot, Operation::Initialize, user_supplied).await?;
            self.credential_loop(session, &u, move |c, so| {
                let so_pin = match so {
                    Credential::Pin(p) => p.clone(),
                    Credential::ProtectedPath => {
                        return Err(Error::NotSupported("initialising through a PIN pad is not supported".into()));
                    }
                };
                c.initialize(&InitRequest { so_pin, label: label.clone(), user_pin: Some(user_pin.clone()) })
            })
            .await?;
            self.consent.cache.wipe_carrier(&slot.info().id);
            self.carriers.note_changed(&slot.info().id);
            Ok(json!({ "initialized": true, "token": slot.info().id }))
        })
        .await
    }
}
