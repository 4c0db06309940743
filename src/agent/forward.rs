//! The carrier contract over the Unix socket: `carrier.*` methods that mirror [`Carrier`] one to
//! one, in the contract's own JSON types, so a local program can drive any carrier the agent
//! serves exactly as if it held the driver — and every use still passes the agent's gate.
//!
//! The `ukey` CLI uses them when an agent runs (`remote.rs` is the client side: a [`Carrier`]
//! that forwards here), and the PKCS#11 forwarder module can too. PINs are supplied by the local
//! client (it asked its user itself); without one, the agent asks through pinentry.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use ukey_api::crypto::encoding::{base64_decode, base64_encode};
use ukey_api::{
    Carrier, CarrierId, CertificateImport, Credential, DataObjectWrite, Error, InitRequest, KeyAlgorithm,
    KeyGenRequest, Mechanism, ObjectId, Pin, PinRole, SignInput,
};

use crate::agent::carriers::CarrierSlot;
use crate::agent::credentials::{Use, sm3_hex, supplied_pin};
use crate::agent::error::{AgentError, AgentResult};
use crate::agent::gate::Operation;
use crate::agent::service::{Service, Session, parse_params};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Token {
    token: String,
}

/// The common part of every authenticated `carrier.*` call.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Authed<T> {
    token: String,
    #[serde(default)]
    pin: Option<Zeroizing<String>>,
    #[serde(default)]
    protected_path: bool,
    #[serde(flatten)]
    args: T,
}

#[derive(Deserialize)]
struct SignArgs {
    key: String,
    mechanism: Mechanism,
    digest: String,
    #[serde(default)]
    message: Option<String>,
    /// Ask the holder for this signature even when the connection is logged in (a key that
    /// always authenticates, or a PKCS#11 context-specific login).
    #[serde(default)]
    fresh: bool,
}

#[derive(Deserialize)]
struct GenerateArgs {
    algorithm: KeyAlgorithm,
    label: String,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct ImportArgs {
    der: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct WriteDataArgs {
    label: String,
    application: String,
    #[serde(default)]
    id: Option<String>,
    value: String,
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize)]
struct ReadDataArgs {
    label: String,
}

#[derive(Deserialize)]
struct DeleteArgs {
    id: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
struct Empty {}

#[derive(Deserialize)]
struct RoleArgs {
    #[serde(default)]
    role: Option<PinRole>,
}

#[derive(Deserialize)]
struct ChangeArgs {
    #[serde(default)]
    role: Option<PinRole>,
    new_pin: Zeroizing<String>,
}

#[derive(Deserialize)]
struct UnblockArgs {
    new_pin: Zeroizing<String>,
}

#[derive(Deserialize)]
struct InitArgs {
    label: String,
    #[serde(default)]
    user_pin: Option<Zeroizing<String>>,
}

fn hex_id(text: &str) -> AgentResult<ObjectId> {
    Ok(ObjectId::from_hex(text)?)
}

fn b64(name: &str, text: &str) -> AgentResult<Vec<u8>> {
    base64_decode(text).map_err(|e| AgentError::InvalidParams(format!("`{name}`: {e}")))
}

fn new_pin(text: Zeroizing<String>) -> AgentResult<Pin> {
    supplied_pin(Some(text))?.ok_or_else(|| AgentError::InvalidParams("a PIN is required".into()))
}

impl Service {
    /// Dispatches a `carrier.*` method.
    pub(crate) async fn forward(
        &self,
        session: &Session,
        method: &str,
        params: Option<&RawValue>,
    ) -> AgentResult<Value> {
        match method {
            "carrier.list" => {
                let infos: Vec<_> = self.carriers.list().iter().map(|s| s.info().clone()).collect();
                Ok(json!({ "carriers": infos }))
            }
            "carrier.capabilities" => {
                let slot = self.slot_of(params)?;
                Ok(json!(slot.run(|c| c.capabilities()).await?))
            }
            "carrier.pin_state" => {
                let slot = self.slot_of(params)?;
                Ok(json!(slot.run(|c| c.pin_state()).await?))
            }
            "carrier.objects" => {
                let slot = self.slot_of(params)?;
                slot.invalidate();
                Ok(json!(&*slot.objects().await?))
            }
            "carrier.sign" => {
                let p: Authed<SignArgs> = parse_params(params)?;
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let key = hex_id(&p.args.key)?;
                let digest = b64("digest", &p.args.digest)?;
                let message = p.args.message.as_deref().map(|m| b64("message", m)).transpose()?;
                let objects = slot.objects().await?;
                let key_obj = objects.key_for(&key).cloned();
                let cert = objects.certificate_for(&key).cloned();
                // A connection that logged in (carrier.login) signs with its login, unless it
                // asks for a fresh PIN or the key demands one for every signature.
                let always = key_obj.as_ref().is_some_and(|k| k.always_authenticate);
                let cred = match cred {
                    None if !p.args.fresh && !always => session.login_for(&slot.info().id),
                    other => other,
                };
                let u = Use {
                    operation: Operation::Sign,
                    slot: &slot,
                    cert: cert.as_ref(),
                    key: key_obj.as_ref(),
                    data_sm3: Some(sm3_hex(message.as_deref().unwrap_or(&digest))),
                    detail: None,
                    role: PinRole::User,
                    supplied: None,
                    protected_path: false,
                };
                let input = SignInput { digest, message };
                let mechanism = p.args.mechanism;
                let sig =
                    self.with_forwarded(session, u, cred, move |c, cr| c.sign(&key, &mechanism, &input, cr)).await?;
                Ok(json!({ "signature": base64_encode(&sig) }))
            }
            "carrier.generate_key" => {
                let p: Authed<GenerateArgs> = parse_params(params)?;
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let request = KeyGenRequest {
                    algorithm: p.args.algorithm,
                    label: p.args.label,
                    id: p.args.id.as_deref().map(hex_id).transpose()?,
                };
                let u = self.plain_use(&slot, Operation::GenerateKey, PinRole::User);
                let key = self.with_forwarded(session, u, cred, move |c, cr| c.generate_key(&request, cr)).await?;
                self.carriers.note_changed(&slot.info().id);
                Ok(json!(key))
            }
            "carrier.import_certificate" => {
                let p: Authed<ImportArgs> = parse_params(params)?;
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let der = b64("der", &p.args.der)?;
                let mut u = self.plain_use(&slot, Operation::ImportCertificate, PinRole::User);
                u.data_sm3 = Some(sm3_hex(&der));
                let request =
                    CertificateImport { der, label: p.args.label, id: p.args.id.as_deref().map(hex_id).transpose()? };
                let cert =
                    self.with_forwarded(session, u, cred, move |c, cr| c.import_certificate(&request, cr)).await?;
                self.carriers.note_changed(&slot.info().id);
                Ok(json!(cert))
            }
            "carrier.write_data" => {
                let p: Authed<WriteDataArgs> = parse_params(params)?;
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let value = Zeroizing::new(b64("value", &p.args.value)?);
                let mut u = self.plain_use(&slot, Operation::WriteData, PinRole::User);
                u.data_sm3 = Some(sm3_hex(&value));
                let request = DataObjectWrite {
                    label: p.args.label,
                    application: p.args.application,
                    id: p.args.id.as_deref().map(hex_id).transpose()?,
                    value,
                    private: p.args.private,
                };
                let info = self.with_forwarded(session, u, cred, move |c, cr| c.write_data(&request, cr)).await?;
                self.carriers.note_changed(&slot.info().id);
                Ok(json!(info))
            }
            "carrier.read_data" => {
                let p: Authed<ReadDataArgs> = parse_params(params)?;
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let label = p.args.label;
                let value = match cred {
                    // Public data objects need no login.
                    None => slot.run(move |c| c.read_data(&label, None)).await?,
                    Some(cred) => {
                        let u = self.plain_use(&slot, Operation::ReadData, PinRole::User);
                        self.with_forwarded(session, u, Some(cred), move |c, cr| c.read_data(&label, Some(cr))).await?
                    }
                };
                Ok(json!({ "value": base64_encode(&value) }))
            }
            "carrier.delete_object" => {
                let p: Authed<DeleteArgs> = parse_params(params)?;
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let id = hex_id(&p.args.id)?;
                let label = p.args.label;
                let u = self.plain_use(&slot, Operation::DeleteObject, PinRole::User);
                self.with_forwarded(session, u, cred, move |c, cr| c.delete_object(&id, label.as_deref(), cr)).await?;
                self.carriers.note_changed(&slot.info().id);
                Ok(json!({ "deleted": true }))
            }
            "carrier.verify_pin" => {
                let p: Authed<RoleArgs> = parse_params(params)?;
                let role = p.args.role.unwrap_or(PinRole::User);
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let u = self.plain_use(&slot, Operation::VerifyPin, role);
                self.with_forwarded(session, u, cred, move |c, cr| c.verify_pin(role, cr)).await?;
                Ok(json!({ "verified": true }))
            }
            "carrier.login" => {
                let p: Authed<Empty> = parse_params(params)?;
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let mut u = self.plain_use(&slot, Operation::VerifyPin, PinRole::User);
                u.detail =
                    Some("to log in: the program may then sign with this carrier until it logs out or exits".into());
                let working = self
                    .with_forwarded(session, u, cred, move |c, cr| {
                        c.verify_pin(PinRole::User, cr)?;
                        Ok(cr.clone())
                    })
                    .await?;
                session.remember_login(slot.info().id.clone(), working);
                log::info!("{} logged in to {}", session.client.describe(), slot.info().id);
                Ok(json!({ "logged_in": true }))
            }
            "carrier.logout" => {
                let p: Token = parse_params(params)?;
                let was = session.forget_login(&CarrierId::from_string(p.token));
                Ok(json!({ "logged_out": was }))
            }
            "carrier.change_pin" => {
                let p: Authed<ChangeArgs> = parse_params(params)?;
                let role = p.args.role.unwrap_or(PinRole::User);
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let new = new_pin(p.args.new_pin)?;
                let u = self.plain_use(&slot, Operation::ChangePin, role);
                self.with_forwarded(session, u, cred, move |c, cr| c.change_pin(role, cr, &new)).await?;
                self.consent.cache.wipe_carrier(&slot.info().id);
                Ok(json!({ "changed": true }))
            }
            "carrier.unblock_pin" => {
                let p: Authed<UnblockArgs> = parse_params(params)?;
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let new = new_pin(p.args.new_pin)?;
                let u = self.plain_use(&slot, Operation::UnblockPin, PinRole::So);
                self.with_forwarded(session, u, cred, move |c, cr| c.unblock_pin(cr, &new)).await?;
                self.consent.cache.wipe_carrier(&slot.info().id);
                Ok(json!({ "unblocked": true }))
            }
            "carrier.initialize" => {
                let p: Authed<InitArgs> = parse_params(params)?;
                let (slot, cred) = self.authed(&p.token, p.pin, p.protected_path)?;
                let user_pin = supplied_pin(p.args.user_pin)?;
                let label = p.args.label;
                let u = self.plain_use(&slot, Operation::Initialize, PinRole::So);
                self.with_forwarded(session, u, cred, move |c, cr| {
                    let so_pin = match cr {
                        Credential::Pin(p) => p.clone(),
                        Credential::ProtectedPath => {
                            return Err(Error::NotSupported("initialising through a PIN pad is not supported".into()));
                        }
                    };
                    c.initialize(&InitRequest { so_pin, label: label.clone(), user_pin: user_pin.clone() })
                })
                .await?;
                self.consent.cache.wipe_carrier(&slot.info().id);
                self.carriers.note_changed(&slot.info().id);
                Ok(json!({ "initialized": true }))
            }
            other => Err(AgentError::MethodNotFound(other.to_string())),
        }
    }

    fn slot_of(&self, params: Option<&RawValue>) -> AgentResult<Arc<CarrierSlot>> {
        let p: Token = parse_params(params)?;
        Ok(self.carriers.get(&CarrierId::from_string(p.token))?)
    }

    /// The carrier and the credential the client gave (`None`: ask the holder).
    fn authed(
        &self,
        token: &str,
        pin: Option<Zeroizing<String>>,
        protected_path: bool,
    ) -> AgentResult<(Arc<CarrierSlot>, Option<Credential>)> {
        let slot = self.carriers.get(&CarrierId::from_string(token))?;
        let cred = match supplied_pin(pin)? {
            Some(p) => Some(Credential::Pin(p)),
            None if protected_path => Some(Credential::ProtectedPath),
            None => None,
        };
        Ok((slot, cred))
    }

    fn plain_use<'a>(&self, slot: &'a Arc<CarrierSlot>, operation: Operation, role: PinRole) -> Use<'a> {
        Use {
            operation,
            slot,
            cert: None,
            key: None,
            data_sm3: None,
            detail: None,
            role,
            supplied: None,
            protected_path: false,
        }
    }

    /// Runs a forwarded operation through the gate with the client's credential, or with one
    /// asked from the holder when the client gave none.
    async fn with_forwarded<T, F>(
        &self,
        session: &Session,
        mut u: Use<'_>,
        cred: Option<Credential>,
        op: F,
    ) -> AgentResult<T>
    where
        T: Send + 'static,
        F: Fn(&dyn Carrier, &Credential) -> Result<T, Error> + Send + Sync + Clone + 'static,
    {
        match cred {
            Some(Credential::ProtectedPath) => {
                u.protected_path = true;
                self.with_credential(session, u, op).await
            }
            Some(Credential::Pin(p)) => {
                u.supplied = Some(p);
                self.with_credential(session, u, op).await
            }
            None => self.with_credential(session, u, op).await,
        }
    }
}
