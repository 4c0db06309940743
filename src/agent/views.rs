//! What clients see of carriers, certificates and keys, and the stable handles that name them.
//!
//! A handle is `CARRIER-ID#OBJECT-ID-HEX`: the carrier's stable id (the same on every insertion)
//! and the id that pairs a key with its certificate, so a handle stays valid across re-insertion
//! and agent restarts. This is what the PKCS#11 forwarder (issue 9) keeps as its object handles.

use serde::Serialize;

use ukey_api::crypto::encoding::base64_encode;
use ukey_api::uri::ObjectType;
use ukey_api::{CarrierId, CarrierInfo, CertificateObject, KeyObject, ObjectId, PinState, Pkcs11Uri};

/// Builds the handle of an object on a carrier.
pub fn handle(carrier: &CarrierId, object: &ObjectId) -> String {
    format!("{}#{}", carrier, object.to_hex())
}

/// Splits a handle into carrier id and object id.
pub fn parse_handle(text: &str) -> Result<(CarrierId, ObjectId), String> {
    let (carrier, object) = text
        .rsplit_once('#')
        .ok_or_else(|| format!("`{text}` is not a handle (CARRIER#ID, as certs.list and keys.list give them)"))?;
    if carrier.is_empty() {
        return Err(format!("`{text}` names no carrier"));
    }
    let object = ObjectId::from_hex(object).map_err(|e| e.to_string())?;
    Ok((CarrierId::from_string(carrier), object))
}

/// A carrier as `tokens.list` and events show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenView {
    /// Stable id.
    pub id: String,
    /// Driver family.
    pub kind: String,
    /// Label.
    pub label: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial.
    pub serial: String,
    /// True for the software token (not a hardware carrier).
    pub software: bool,
    /// PKCS#11 URI of the carrier.
    pub uri: String,
    /// PIN state, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinState>,
}

impl TokenView {
    /// The view of a carrier, with its PIN state if known.
    pub fn new(info: &CarrierInfo, pin: Option<PinState>) -> Self {
        TokenView {
            id: info.id.to_string(),
            kind: info.kind.to_string(),
            label: info.label.clone(),
            manufacturer: info.manufacturer.clone(),
            model: info.model.clone(),
            serial: info.serial.clone(),
            software: info.software,
            uri: Pkcs11Uri::for_carrier(info).to_string(),
            pin,
        }
    }
}

/// A certificate as `certs.list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertView {
    /// Handle for `sign` and `auth`.
    pub handle: String,
    /// Carrier id.
    pub token: String,
    /// Object id, hex.
    pub id: String,
    /// Label on the carrier.
    pub label: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// Validity start, Unix seconds.
    pub not_before: i64,
    /// Validity end, Unix seconds.
    pub not_after: i64,
    /// Key usage names.
    pub key_usage: Vec<String>,
    /// Key algorithm name (`p256`, `sm2`, `rsa2048`...), when supported.
    pub key_algorithm: Option<String>,
    /// SHA-256 fingerprint, hex.
    pub fingerprint: String,
    /// True when a private key with the same id is on the carrier (so it can sign).
    pub has_key: bool,
    /// Mechanisms the key can make, when it has one.
    pub mechanisms: Vec<String>,
    /// PKCS#11 URI.
    pub uri: String,
    /// The certificate, base64 DER.
    pub der: String,
}

impl CertView {
    /// The view of a certificate, with its paired key if any.
    pub fn new(info: &CarrierInfo, cert: &CertificateObject, key: Option<&KeyObject>) -> Self {
        CertView {
            handle: handle(&info.id, &cert.id),
            token: info.id.to_string(),
            id: cert.id.to_hex(),
            label: cert.label.clone(),
            subject: cert.info.subject.clone(),
            issuer: cert.info.issuer.clone(),
            serial: cert.info.serial.clone(),
            not_before: cert.info.not_before,
            not_after: cert.info.not_after,
            key_usage: cert.info.key_usage.clone(),
            key_algorithm: cert.info.key_algorithm.map(|a| a.name()),
            fingerprint: cert.info.sha256_fingerprint.clone(),
            has_key: key.is_some(),
            mechanisms: key.map(|k| k.mechanisms.iter().map(|m| m.as_str().to_string()).collect()).unwrap_or_default(),
            uri: Pkcs11Uri::for_object(info, &cert.id, &cert.label, ObjectType::Cert).to_string(),
            der: base64_encode(&cert.info.der),
        }
    }
}

/// A private key as `keys.list` shows it (Unix socket only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyView {
    /// Handle for `sign`.
    pub handle: String,
    /// Carrier id.
    pub token: String,
    /// Object id, hex.
    pub id: String,
    /// Label.
    pub label: String,
    /// Algorithm name.
    pub algorithm: String,
    /// Public key, base64 DER SubjectPublicKeyInfo, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Every signature needs the PIN again.
    pub always_authenticate: bool,
    /// Mechanisms the key can make.
    pub mechanisms: Vec<String>,
    /// Fingerprint of the paired certificate, if any.
    pub certificate: Option<String>,
    /// PKCS#11 URI.
    pub uri: String,
}

impl KeyView {
    /// The view of a key.
    pub fn new(info: &CarrierInfo, key: &KeyObject) -> Self {
        KeyView {
            handle: handle(&info.id, &key.id),
            token: info.id.to_string(),
            id: key.id.to_hex(),
            label: key.label.clone(),
            algorithm: key.algorithm.name(),
            public_key: key.public_key.as_deref().map(base64_encode),
            always_authenticate: key.always_authenticate,
            mechanisms: key.mechanisms.iter().map(|m| m.as_str().to_string()).collect(),
            certificate: key.certificate.clone(),
            uri: Pkcs11Uri::for_object(info, &key.id, &key.label, ObjectType::Private).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ukey_api::CarrierKind;

    #[test]
    fn handles_round_trip_even_with_odd_carrier_ids() {
        let carrier = CarrierId::new(CarrierKind::Pkcs11, &["/usr/lib/x#y.so", "Token #1"]);
        let object = ObjectId(vec![0x9a, 0x01]);
        let h = handle(&carrier, &object);
        assert_eq!(parse_handle(&h).unwrap(), (carrier, object));
        assert!(parse_handle("no-hash").is_err());
        assert!(parse_handle("#01").is_err());
        assert!(parse_handle("soft:x#zz").is_err());
    }
}
