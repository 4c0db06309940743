//! Enrolment behind its own grant: `keys.generate`, `csr.create`, `certs.import`.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use ukey_api::crypto::csr::build_csr_pem;
use ukey_api::crypto::encoding::base64_encode;
use ukey_api::crypto::pem::der_from_pem_or_der;
use ukey_api::crypto::signer::CarrierKeySigner;
use ukey_api::{
    CarrierId, CertificateImport, CertificateInfo, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId, PinRole,
};

use crate::agent::credentials::{Use, b64_param, sm3_hex, supplied_pin};
use crate::agent::error::{AgentError, AgentResult};
use crate::agent::gate::Operation;
use crate::agent::service::{Service, Session, parse_params};
use crate::agent::views::{CertView, KeyView};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateParams {
    token: String,
    algorithm: String,
    label: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    pin: Option<Zeroizing<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrParams {
    key: String,
    subject: String,
    #[serde(default)]
    mechanism: Option<String>,
    #[serde(default)]
    pin: Option<Zeroizing<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    token: String,
    certificate: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    pin: Option<Zeroizing<String>>,
}

impl Service {
    /// `keys.generate`
    pub(crate) async fn keys_generate(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: GenerateParams = parse_params(params)?;
        let algorithm: KeyAlgorithm = p.algorithm.parse()?;
        let label = p.label.trim().to_string();
        if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
            return Err(AgentError::InvalidParams("the label must be 1 to 64 printable characters".into()));
        }
        let id = p.id.as_deref().map(ObjectId::from_hex).transpose()?;
        let slot = self.carriers.get(&CarrierId::from_string(p.token))?;
        let u = Use {
            operation: Operation::GenerateKey,
            slot: &slot,
            cert: None,
            key: None,
            data_sm3: None,
            detail: Some(format!("({algorithm}, label \"{label}\")")),
            role: PinRole::User,
            supplied: supplied_pin(p.pin)?,
            protected_path: false,
        };
        let request = KeyGenRequest { algorithm, label, id };
        let key = self.with_credential(session, u, move |c, cred| c.generate_key(&request, cred)).await?;
        self.carriers.note_changed(&slot.info().id);
        Ok(json!(KeyView::new(slot.info(), &key)))
    }

    /// `csr.create`
    pub(crate) async fn csr_create(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: CsrParams = parse_params(params)?;
        ukey_api::crypto::name::parse_name(&p.subject)?;
        let target = self.target(session, &p.key, false).await?;
        let mechanism = p.mechanism.as_deref().map(|m| Mechanism::parse(m, None)).transpose()?;
        let u = Use {
            operation: Operation::CreateCsr,
            slot: &target.slot,
            cert: target.cert.as_ref(),
            key: Some(&target.key),
            data_sm3: Some(sm3_hex(p.subject.as_bytes())),
            detail: Some(format!("for \"{}\"", p.subject)),
            role: PinRole::User,
            supplied: supplied_pin(p.pin)?,
            protected_path: false,
        };
        let (key_id, spki, subject) = (target.key.id.clone(), target.spki.clone(), p.subject.clone());
        let pem = self
            .with_credential(session, u, move |c, cred| {
                let signer = CarrierKeySigner::new(c, key_id.clone(), spki.clone(), cred)?;
                build_csr_pem(&signer, &subject, mechanism.as_ref())
            })
            .await?;
        let der = der_from_pem_or_der(pem.as_bytes(), "CERTIFICATE REQUEST")?;
        Ok(json!({ "csr": pem, "der": base64_encode(&der) }))
    }

    /// `certs.import`
    pub(crate) async fn certs_import(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: ImportParams = parse_params(params)?;
        let text = p.certificate.trim();
        let der = if text.starts_with("-----BEGIN") {
            der_from_pem_or_der(text.as_bytes(), "CERTIFICATE")?
        } else {
            b64_param("certificate", text)?
        };
        let info = CertificateInfo::parse(&der)?;
        let slot = self.carriers.get(&CarrierId::from_string(p.token))?;
        let u = Use {
            operation: Operation::ImportCertificate,
            slot: &slot,
            cert: None,
            key: None,
            data_sm3: Some(sm3_hex(&der)),
            detail: Some(format!("\"{}\"", info.subject)),
            role: PinRole::User,
            supplied: supplied_pin(p.pin)?,
            protected_path: false,
        };
        let request = CertificateImport { der, label: p.label, id: None };
        let cert = self.with_credential(session, u, move |c, cred| c.import_certificate(&request, cred)).await?;
        self.carriers.note_changed(&slot.info().id);
        let objects = slot.objects().await?;
        Ok(json!(CertView::new(slot.info(), &cert, objects.key_for(&cert.id))))
    }
}
