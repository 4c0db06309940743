//! The client side of "CLI through the agent": a [`Driver`] and [`Carrier`] that forward every
//! call to the running agent's `carrier.*` methods over the Unix socket. When an agent runs, the
//! CLI's registry holds these instead of the local drivers, so every command works unchanged and
//! the agent's custody policy and audit apply to it; without an agent the CLI drives carriers
//! directly.
//!
//! PINs the CLI collected are spliced into the request text in a zeroizing buffer; they never pass
//! through a `serde_json::Value`.

use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use ukey_api::crypto::encoding::{base64_decode, base64_encode};
use ukey_api::{
    Capabilities, Carrier, CarrierInfo, CarrierKind, CertificateImport, CertificateObject, Credential, DataObjectInfo,
    DataObjectWrite, Driver, DriverStatus, Error, EventSink, InitRequest, KeyGenRequest, KeyObject, Mechanism,
    ObjectId, ObjectList, Pin, PinRole, PinState, SecretBytes, SignInput, Watch,
};

use crate::agent::client::AgentClient;

/// A shared connection to the agent.
#[derive(Clone)]
pub struct AgentLink {
    client: Arc<Mutex<AgentClient>>,
    socket: String,
}

impl AgentLink {
    /// Connects to the running agent, if there is one (and `UKEY_NO_AGENT` is not set).
    pub fn connect_if_running(runtime_dir: Option<&std::path::Path>) -> Option<Self> {
        if std::env::var_os("UKEY_NO_AGENT").is_some_and(|v| !v.is_empty() && v != "0") {
            return None;
        }
        let socket = AgentClient::default_socket(runtime_dir)?;
        match AgentClient::connect(&socket) {
            Ok(c) => Some(AgentLink { client: Arc::new(Mutex::new(c)), socket: socket.display().to_string() }),
            Err(e) => {
                log::debug!("not using the agent at {}: {e}", socket.display());
                None
            }
        }
    }

    fn call<T: DeserializeOwned>(&self, method: &str, params: Value, secrets: &[(&str, &str)]) -> Result<T, Error> {
        let mut client =
            self.client.lock().map_err(|_| Error::Device("the agent connection lock is poisoned".into()))?;
        let result = if secrets.is_empty() {
            client.call(method, params)
        } else {
            client.call_with_secrets(method, params, secrets)
        }
        .map_err(Error::from)?;
        serde_json::from_value(result)
            .map_err(|e| Error::Device(format!("the agent's answer to {method} is not understood: {e}")))
    }

    /// One driver per carrier family the agent serves now (the contract gives a driver one kind).
    pub fn drivers(&self) -> Result<Vec<AgentDriver>, Error> {
        let list: CarrierList = self.call("carrier.list", json!({}), &[])?;
        let mut kinds: Vec<CarrierKind> = list.carriers.iter().map(|c| c.kind).collect();
        kinds.sort();
        kinds.dedup();
        Ok(kinds.into_iter().map(|kind| AgentDriver { link: self.clone(), kind }).collect())
    }
}

/// A CLI registry whose carriers are the running agent's, or `None` when no agent runs (or it
/// cannot list its carriers, in which case the CLI falls back to the local drivers).
pub fn registry_through_agent(runtime_dir: Option<&std::path::Path>) -> Option<crate::registry::Registry> {
    let link = AgentLink::connect_if_running(runtime_dir)?;
    match link.drivers() {
        Ok(drivers) => {
            log::info!("using the carriers of the running ukey agent at {}", link.socket);
            let mut registry = crate::registry::Registry::default();
            for d in drivers {
                registry.add("agent", Box::new(d));
            }
            Some(registry)
        }
        Err(e) => {
            log::warn!("the running ukey agent did not list its carriers ({e}); using the carriers directly");
            None
        }
    }
}

#[derive(serde::Deserialize)]
struct CarrierList {
    carriers: Vec<CarrierInfo>,
}

/// The carriers of one family, as the agent serves them.
pub struct AgentDriver {
    link: AgentLink,
    kind: CarrierKind,
}

impl Driver for AgentDriver {
    fn kind(&self) -> CarrierKind {
        self.kind
    }

    fn carriers(&self) -> Result<Vec<Arc<dyn Carrier>>, Error> {
        let list: CarrierList = self.link.call("carrier.list", json!({}), &[])?;
        Ok(list
            .carriers
            .into_iter()
            .filter(|c| c.kind == self.kind)
            .map(|info| Arc::new(RemoteCarrier { link: self.link.clone(), info }) as Arc<dyn Carrier>)
            .collect())
    }

    fn watch(&self, _sink: EventSink) -> Result<Box<dyn Watch>, Error> {
        Err(Error::NotSupported("subscribe to the agent's events.subscribe instead".into()))
    }

    fn status(&self) -> Vec<DriverStatus> {
        vec![DriverStatus {
            subject: self.link.socket.clone(),
            ok: true,
            message: format!("{} carriers are used through the running ukey agent", self.kind),
        }]
    }
}

/// One carrier, reached through the agent.
pub struct RemoteCarrier {
    link: AgentLink,
    info: CarrierInfo,
}

/// The params naming the carrier, plus the credential (a PIN goes to the secrets list).
fn with_credential<'a>(mut params: Value, auth: &'a Credential, secrets: &mut Vec<(&'static str, &'a str)>) -> Value {
    match auth {
        Credential::Pin(p) => secrets.push(("pin", p.expose())),
        Credential::ProtectedPath => params["protected_path"] = json!(true),
    }
    params
}

impl RemoteCarrier {
    fn token(&self) -> Value {
        json!({ "token": self.info.id })
    }

    fn authed<T: DeserializeOwned>(&self, method: &str, extra: Value, auth: &Credential) -> Result<T, Error> {
        let mut params = self.token();
        if let (Some(p), Value::Object(e)) = (params.as_object_mut(), extra) {
            p.extend(e);
        }
        let mut secrets = Vec::new();
        let params = with_credential(params, auth, &mut secrets);
        self.link.call(method, params, &secrets)
    }
}

#[derive(serde::Deserialize)]
struct Signature {
    signature: String,
}

#[derive(serde::Deserialize)]
struct DataValue {
    value: String,
}

#[derive(serde::Deserialize)]
struct Ignored {}

impl Carrier for RemoteCarrier {
    fn info(&self) -> &CarrierInfo {
        &self.info
    }

    fn capabilities(&self) -> Result<Capabilities, Error> {
        self.link.call("carrier.capabilities", self.token(), &[])
    }

    fn pin_state(&self) -> Result<PinState, Error> {
        self.link.call("carrier.pin_state", self.token(), &[])
    }

    fn objects(&self) -> Result<ObjectList, Error> {
        self.link.call("carrier.objects", self.token(), &[])
    }

    fn sign(
        &self,
        key: &ObjectId,
        mechanism: &Mechanism,
        input: &SignInput,
        auth: &Credential,
    ) -> Result<Vec<u8>, Error> {
        let mut extra = json!({ "key": key.to_hex(), "mechanism": mechanism, "digest": base64_encode(&input.digest) });
        if let Some(m) = &input.message {
            extra["message"] = json!(base64_encode(m));
        }
        let s: Signature = self.authed("carrier.sign", extra, auth)?;
        base64_decode(&s.signature).map_err(Error::Device)
    }

    fn generate_key(&self, request: &KeyGenRequest, auth: &Credential) -> Result<KeyObject, Error> {
        let mut extra = json!({ "algorithm": request.algorithm, "label": request.label });
        if let Some(id) = &request.id {
            extra["id"] = json!(id.to_hex());
        }
        self.authed("carrier.generate_key", extra, auth)
    }

    fn import_certificate(&self, request: &CertificateImport, auth: &Credential) -> Result<CertificateObject, Error> {
        let mut extra = json!({ "der": base64_encode(&request.der) });
        if let Some(l) = &request.label {
            extra["label"] = json!(l);
        }
        if let Some(id) = &request.id {
            extra["id"] = json!(id.to_hex());
        }
        self.authed("carrier.import_certificate", extra, auth)
    }

    fn write_data(&self, request: &DataObjectWrite, auth: &Credential) -> Result<DataObjectInfo, Error> {
        let value = Zeroizing::new(base64_encode(&request.value));
        let mut extra =
            json!({ "label": request.label, "application": request.application, "private": request.private });
        if let Some(id) = &request.id {
            extra["id"] = json!(id.to_hex());
        }
        // The value may be secret: it travels like a PIN, spliced into a zeroizing buffer.
        let mut params = self.token();
        if let (Some(p), Value::Object(e)) = (params.as_object_mut(), extra) {
            p.extend(e);
        }
        let mut secrets = vec![("value", value.as_str())];
        let params = with_credential(params, auth, &mut secrets);
        self.link.call("carrier.write_data", params, &secrets)
    }

    fn read_data(&self, label: &str, auth: Option<&Credential>) -> Result<SecretBytes, Error> {
        let d: DataValue = match auth {
            Some(a) => self.authed("carrier.read_data", json!({ "label": label }), a)?,
            None => {
                let mut params = self.token();
                params["label"] = json!(label);
                self.link.call("carrier.read_data", params, &[])?
            }
        };
        let value = Zeroizing::new(d.value);
        base64_decode(&value).map(Zeroizing::new).map_err(Error::Device)
    }

    fn delete_object(&self, id: &ObjectId, label: Option<&str>, auth: &Credential) -> Result<(), Error> {
        let mut extra = json!({ "id": id.to_hex() });
        if let Some(l) = label {
            extra["label"] = json!(l);
        }
        let _: Ignored = self.authed("carrier.delete_object", extra, auth)?;
        Ok(())
    }

    fn verify_pin(&self, role: PinRole, auth: &Credential) -> Result<(), Error> {
        let _: Ignored = self.authed("carrier.verify_pin", json!({ "role": role }), auth)?;
        Ok(())
    }

    fn change_pin(&self, role: PinRole, old: &Credential, new: &Pin) -> Result<(), Error> {
        let mut secrets = vec![("new_pin", new.expose())];
        let mut params = self.token();
        params["role"] = json!(role);
        let params = with_credential(params, old, &mut secrets);
        let _: Ignored = self.link.call("carrier.change_pin", params, &secrets)?;
        Ok(())
    }

    fn unblock_pin(&self, so: &Credential, new_user_pin: &Pin) -> Result<(), Error> {
        let mut secrets = vec![("new_pin", new_user_pin.expose())];
        let params = with_credential(self.token(), so, &mut secrets);
        let _: Ignored = self.link.call("carrier.unblock_pin", params, &secrets)?;
        Ok(())
    }

    fn initialize(&self, request: &InitRequest) -> Result<(), Error> {
        let mut secrets = vec![("pin", request.so_pin.expose())];
        if let Some(u) = &request.user_pin {
            secrets.push(("user_pin", u.expose()));
        }
        let mut params = self.token();
        params["label"] = json!(request.label);
        let _: Ignored = self.link.call("carrier.initialize", params, &secrets)?;
        Ok(())
    }
}
