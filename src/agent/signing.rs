//! `sign` and `auth`: signatures with a carrier key, the PIN asked by the agent.
//!
//! The core prepares the input (`prepare_input`: the mechanism's hash, SM2 over `Z ‖ M`) so every
//! carrier gets the same thing; the carrier's declared input form is checked in the same queued
//! transaction that signs. Outputs: raw, DER, or CMS SignedData (detached or attached).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use ukey_api::crypto::encoding::base64_encode;
use ukey_api::crypto::prepare::{SignData, check_input_form, prepare_input};
use ukey_api::crypto::sigenc::{SignatureFormat, encode_signature};
use ukey_api::{Carrier, Credential, Error, Mechanism, ObjectId, PinRole, SignInput};

use crate::agent::auth::{self, AuthToken};
use crate::agent::credentials::{Use, b64_param, sm3_hex, supplied_pin};
use crate::agent::error::{AgentError, AgentResult};
use crate::agent::gate::Operation;
use crate::agent::service::{Service, Session, parse_params};
use crate::agent::webguard::WebOrigin;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignParams {
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    mechanism: Option<String>,
    #[serde(default)]
    sm2_id: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    pin: Option<Zeroizing<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthParams {
    cert: String,
    nonce: String,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    pin: Option<Zeroizing<String>>,
}

/// Output formats of `sign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Raw,
    Der,
    CmsDetached,
    CmsAttached,
}

impl Output {
    fn parse(text: Option<&str>) -> AgentResult<Self> {
        Ok(match text.unwrap_or("raw") {
            "raw" => Output::Raw,
            "der" => Output::Der,
            "cms" | "cms-detached" | "pkcs7" => Output::CmsDetached,
            "cms-attached" => Output::CmsAttached,
            other => {
                return Err(AgentError::InvalidParams(format!(
                    "format `{other}`; use raw, der, cms (detached) or cms-attached"
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Output::Raw => "raw",
            Output::Der => "der",
            Output::CmsDetached => "cms",
            Output::CmsAttached => "cms-attached",
        }
    }
}

/// Signs `input` on a carrier after checking the input form it declared for the mechanism.
fn sign_prepared(
    c: &dyn Carrier,
    key: &ObjectId,
    mechanism: &Mechanism,
    input: &SignInput,
    cred: &Credential,
) -> Result<Vec<u8>, Error> {
    let form = c.capabilities()?.input_for(mechanism.kind()).ok_or_else(|| {
        Error::NotSupported(format!("{} does not offer {}", c.info().display_name(), mechanism.name()))
    })?;
    check_input_form(input, form)?;
    c.sign(key, mechanism, input, cred)
}

impl Service {
    /// `sign`
    pub(crate) async fn sign(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: SignParams = parse_params(params)?;
        let handle = match (&p.cert, &p.key) {
            (Some(h), None) | (None, Some(h)) => h.clone(),
            _ => {
                return Err(AgentError::InvalidParams(
                    "give exactly one of `cert` and `key` (a handle from certs.list)".into(),
                ));
            }
        };
        let output = Output::parse(p.format.as_deref())?;
        let target = self.target(session, &handle, true).await?;
        let mechanism = match &p.mechanism {
            Some(name) => Mechanism::parse(name, p.sm2_id.as_deref().map(str::as_bytes))?,
            None => match (target.key.algorithm.default_mechanism(), &p.sm2_id) {
                (Mechanism::Sm2Sm3 { .. }, Some(id)) => Mechanism::Sm2Sm3 { user_id: id.as_bytes().to_vec() },
                (m, _) => m,
            },
        };
        if !target.key.mechanisms.contains(&mechanism.kind()) {
            return Err(Error::NotSupported(format!(
                "this {} key cannot make {} signatures here; it offers {}",
                target.key.algorithm,
                mechanism.name(),
                target.key.mechanisms.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .into());
        }
        let given = match (&p.data, &p.digest) {
            (Some(d), None) => b64_param("data", d)?,
            (None, Some(d)) => b64_param("digest", d)?,
            _ => {
                return Err(AgentError::InvalidParams(
                    "give exactly one of `data` (base64) and `digest` (base64)".into(),
                ));
            }
        };
        let data = if p.data.is_some() { SignData::Message(&given) } else { SignData::Digest(&given) };
        if matches!(output, Output::CmsDetached | Output::CmsAttached) && p.data.is_none() {
            return Err(AgentError::InvalidParams("CMS output needs the `data`, not a digest".into()));
        }
        if matches!(output, Output::CmsDetached | Output::CmsAttached) && target.cert.is_none() {
            return Err(Error::NotFound("CMS output needs the key's certificate, and none is stored".into()).into());
        }
        let input = prepare_input(&mechanism, Some(&target.spki), data)?;
        let digest = input.digest.clone();
        let u = Use {
            operation: Operation::Sign,
            slot: &target.slot,
            cert: target.cert.as_ref(),
            key: Some(&target.key),
            data_sm3: Some(sm3_hex(&given)),
            detail: None,
            role: PinRole::User,
            supplied: supplied_pin(p.pin)?,
            protected_path: false,
        };
        let (key_id, mech) = (target.key.id.clone(), mechanism.clone());
        let signature = match output {
            Output::Raw | Output::Der => {
                let raw = self
                    .with_credential(session, u, move |c, cred| sign_prepared(c, &key_id, &mech, &input, cred))
                    .await?;
                let format = if output == Output::Der { SignatureFormat::Der } else { SignatureFormat::Raw };
                encode_signature(target.key.algorithm, &raw, format)?
            }
            Output::CmsDetached | Output::CmsAttached => {
                return Err(Error::NotSupported("CMS output is not available in this build yet".into()).into());
            }
        };
        let mut out = json!({
            "signature": base64_encode(&signature),
            "format": output.name(),
            "mechanism": mechanism.name(),
            "digest": base64_encode(&digest),
        });
        if let Some(c) = &target.cert {
            out["certificate"] = json!(base64_encode(&c.info.der));
        }
        Ok(out)
    }

    /// `auth`
    pub(crate) async fn auth(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: AuthParams = parse_params(params)?;
        let origin = match (session.origin(), &p.origin) {
            (Some(own), None) => own.to_string(),
            (Some(_), Some(_)) => {
                return Err(AgentError::Forbidden(
                    "a web page cannot choose the origin of its login token; its own origin is used".into(),
                ));
            }
            (None, Some(o)) => WebOrigin::parse(o).map_err(AgentError::InvalidParams)?.to_string(),
            (None, None) => {
                return Err(AgentError::InvalidParams(
                    "`origin` (the server the token is for) is required here".into(),
                ));
            }
        };
        auth::check_nonce(&p.nonce)?;
        let target = self.target(session, &p.cert, true).await?;
        let cert = target
            .cert
            .clone()
            .ok_or_else(|| Error::NotFound("authentication needs the key's certificate, and none is stored".into()))?;
        let mechanism = auth::mechanism_for(target.key.algorithm);
        let message = auth::signed_message(&mechanism, &origin, &p.nonce);
        let input = prepare_input(&mechanism, Some(&target.spki), SignData::Message(&message))?;
        let u = Use {
            operation: Operation::Authenticate,
            slot: &target.slot,
            cert: Some(&cert),
            key: Some(&target.key),
            data_sm3: Some(sm3_hex(&message)),
            detail: Some(format!("to {origin}")),
            role: PinRole::User,
            supplied: supplied_pin(p.pin)?,
            protected_path: false,
        };
        let (key_id, mech) = (target.key.id.clone(), mechanism.clone());
        let raw =
            self.with_credential(session, u, move |c, cred| sign_prepared(c, &key_id, &mech, &input, cred)).await?;
        let signature = encode_signature(target.key.algorithm, &raw, SignatureFormat::Raw)?;
        let token = AuthToken {
            format: auth::FORMAT.to_string(),
            origin,
            nonce: p.nonce,
            algorithm: mechanism.name().to_string(),
            certificate: base64_encode(&cert.info.der),
            signature: base64_encode(&signature),
        };
        Ok(json!(token))
    }
}
