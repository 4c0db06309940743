//! Turns what a person types (`--token T`, `--key K`) into a carrier and an object on it.
//!
//! A token is named by its label, serial, carrier id or a PKCS#11 URI (RFC 7512); a key by its
//! label, its certificate's label, its hex id or a PKCS#11 URI (whose token attributes also pick
//! the carrier). When a name fits several objects the answer is [`Error::Ambiguous`] listing the
//! URI of each, so the person can paste one; when nothing fits, the error lists what exists.

use std::sync::Arc;

use ukey_api::uri::ObjectType;
use ukey_api::{Carrier, CarrierInfo, Error, KeyObject, ObjectId, ObjectList, Pkcs11Uri};

use crate::registry::{DriverProblem, Inventory};

/// How a person named a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSpec {
    /// `pkcs11:token=...;serial=...`
    Uri(Pkcs11Uri),
    /// A label, serial or carrier id.
    Name(String),
}

impl TokenSpec {
    /// Reads `--token`: a `pkcs11:` URI or a plain name.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.starts_with("pkcs11:") {
            let uri = Pkcs11Uri::parse(text)?;
            if uri.object.is_some() || uri.id.is_some() || uri.object_type.is_some() {
                return Err(Error::InvalidInput(format!(
                    "`{text}` names an object; --token wants a token URI (token=, serial=, model=, manufacturer=)"
                )));
            }
            Ok(TokenSpec::Uri(uri))
        } else if text.is_empty() {
            Err(Error::InvalidInput("--token is empty; give a label, serial, carrier id or PKCS#11 URI".into()))
        } else {
            Ok(TokenSpec::Name(text.to_string()))
        }
    }

    /// Whether the carrier fits.
    pub fn matches(&self, info: &CarrierInfo) -> bool {
        match self {
            TokenSpec::Uri(uri) => uri.matches_carrier(info),
            TokenSpec::Name(name) => info.label == *name || info.serial == *name || info.id.as_str() == name,
        }
    }
}

/// How a person named a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// `pkcs11:...;object=...;id=...` (token attributes narrow the carriers too).
    Uri(Pkcs11Uri),
    /// A key label, certificate label or hex id.
    Name(String),
}

impl KeySpec {
    /// Reads `--key`: a `pkcs11:` URI or a plain name.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.starts_with("pkcs11:") {
            let uri = Pkcs11Uri::parse(text)?;
            if matches!(uri.object_type, Some(ObjectType::Data | ObjectType::SecretKey)) {
                return Err(Error::InvalidInput(format!(
                    "`{text}` names a data or secret-key object; --key wants a private key, public key or certificate URI"
                )));
            }
            Ok(KeySpec::Uri(uri))
        } else if text.is_empty() {
            Err(Error::InvalidInput("--key is empty; give a key label, hex id or PKCS#11 URI".into()))
        } else {
            Ok(KeySpec::Name(text.to_string()))
        }
    }

    /// Whether the key (with the certificate list of its carrier) fits. The carrier part of a
    /// URI is checked separately by [`KeySpec::matches_carrier`].
    pub fn matches(&self, key: &KeyObject, objects: &ObjectList) -> bool {
        let cert_label = objects.certificate_for(&key.id).map(|c| c.label.as_str());
        match self {
            KeySpec::Uri(uri) => {
                uri.id.as_ref().is_none_or(|id| *id == key.id)
                    && uri.object.as_deref().is_none_or(|o| o == key.label || Some(o) == cert_label)
            }
            KeySpec::Name(name) => {
                key.label == *name
                    || cert_label == Some(name.as_str())
                    || ObjectId::from_hex(name).is_ok_and(|id| !id.0.is_empty() && id == key.id)
            }
        }
    }

    /// Whether a URI's token attributes allow this carrier (plain names allow every carrier).
    pub fn matches_carrier(&self, info: &CarrierInfo) -> bool {
        match self {
            KeySpec::Uri(uri) => uri.matches_carrier(info),
            KeySpec::Name(_) => true,
        }
    }
}

/// A key found on a carrier, with the carrier's object list it was found in.
pub struct ResolvedKey {
    /// The carrier holding the key.
    pub carrier: Arc<dyn Carrier>,
    /// The key.
    pub key: KeyObject,
    /// Everything on the carrier, as listed during the lookup (for the paired certificate).
    pub objects: ObjectList,
}

impl ResolvedKey {
    /// The key's PKCS#11 URI.
    pub fn uri(&self) -> Pkcs11Uri {
        key_uri(self.carrier.info(), &self.key)
    }
}

/// The PKCS#11 URI of a token.
pub fn token_uri(info: &CarrierInfo) -> Pkcs11Uri {
    Pkcs11Uri::for_carrier(info)
}

/// The PKCS#11 URI of a private key.
pub fn key_uri(info: &CarrierInfo, key: &KeyObject) -> Pkcs11Uri {
    Pkcs11Uri::for_object(info, &key.id, &key.label, ObjectType::Private)
}

/// Picks the one carrier `spec` names; with no spec, the only carrier there is.
pub fn select_carrier(inventory: &Inventory, spec: Option<&str>) -> Result<Arc<dyn Carrier>, Error> {
    let spec = spec.map(TokenSpec::parse).transpose()?;
    let found: Vec<&Arc<dyn Carrier>> =
        inventory.carriers.iter().filter(|c| spec.as_ref().is_none_or(|s| s.matches(c.info()))).collect();
    match found.as_slice() {
        [one] => Ok(Arc::clone(one)),
        [] => Err(Error::NotFound(no_token_message(inventory, spec.as_ref()))),
        many => Err(Error::Ambiguous {
            what: match &spec {
                Some(TokenSpec::Name(n)) => format!("token `{n}`"),
                Some(TokenSpec::Uri(u)) => format!("token `{u}`"),
                None => "no --token given, and there".into(),
            },
            candidates: many.iter().map(|c| token_uri(c.info()).to_string()).collect(),
        }),
    }
}

/// The carriers `spec` names (all of them without a spec); an empty result is `NotFound` only
/// when a spec was given.
pub fn filter_carriers(inventory: &Inventory, spec: Option<&str>) -> Result<Vec<Arc<dyn Carrier>>, Error> {
    let Some(text) = spec else {
        return Ok(inventory.carriers.clone());
    };
    let spec = TokenSpec::parse(text)?;
    let found: Vec<Arc<dyn Carrier>> = inventory.carriers.iter().filter(|c| spec.matches(c.info())).cloned().collect();
    if found.is_empty() {
        return Err(Error::NotFound(no_token_message(inventory, Some(&spec))));
    }
    Ok(found)
}

/// Finds the one key `key` names, optionally only on the carriers `token` names.
pub fn select_key(inventory: &Inventory, token: Option<&str>, key: &str) -> Result<ResolvedKey, Error> {
    let spec = KeySpec::parse(key)?;
    let carriers = filter_carriers(inventory, token)?;
    let mut found: Vec<ResolvedKey> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    for carrier in carriers.iter().filter(|c| spec.matches_carrier(c.info())) {
        let objects = match carrier.objects() {
            Ok(o) => o,
            Err(e) => {
                unreadable.push(format!("{}: {e}", carrier.info().label));
                continue;
            }
        };
        for k in &objects.keys {
            seen.push(format!("{} ({})", k.label, key_uri(carrier.info(), k)));
            if spec.matches(k, &objects) {
                found.push(ResolvedKey { carrier: Arc::clone(carrier), key: k.clone(), objects: objects.clone() });
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let mut msg = format!("no key matches `{key}`");
            if seen.is_empty() {
                msg.push_str("; there are no keys yet: create one with `ukey keygen --token T --alg sm2 --label L`");
            } else {
                msg.push_str(&format!("; keys: {}", seen.join(", ")));
            }
            append_unreadable(&mut msg, &unreadable, &inventory.problems);
            Err(Error::NotFound(msg))
        }
        _ => Err(Error::Ambiguous {
            what: format!("key `{key}`"),
            candidates: found.iter().map(|r| r.uri().to_string()).collect(),
        }),
    }
}

fn no_token_message(inventory: &Inventory, spec: Option<&TokenSpec>) -> String {
    let mut msg = match spec {
        Some(TokenSpec::Name(n)) => format!("no token is called `{n}` (by label, serial or id)"),
        Some(TokenSpec::Uri(u)) => format!("no token matches `{u}`"),
        None => "no token found".to_string(),
    };
    if inventory.carriers.is_empty() && !inventory.problems.is_empty() {
        msg.push_str("; no token could be read");
    } else if inventory.carriers.is_empty() {
        msg.push_str(
            "; there are no tokens: plug one in, or create a software token with `ukey token init --soft --label L`",
        );
    } else {
        let names: Vec<String> = inventory
            .carriers
            .iter()
            .map(|c| format!("{} (serial {}, {})", c.info().label, c.info().serial, c.info().id))
            .collect();
        msg.push_str(&format!("; tokens: {}", names.join(", ")));
    }
    append_unreadable(&mut msg, &[], &inventory.problems);
    msg
}

fn append_unreadable(msg: &mut String, unreadable: &[String], problems: &[DriverProblem]) {
    let mut notes: Vec<String> = unreadable.to_vec();
    notes.extend(problems.iter().map(|p| format!("driver {}: {}", p.driver, p.message)));
    if !notes.is_empty() {
        msg.push_str(&format!(" (not searched: {})", notes.join("; ")));
    }
}

#[cfg(test)]
mod tests {
    use ukey_api::{CarrierId, CarrierKind, KeyAlgorithm};

    use super::*;

    fn info(label: &str, serial: &str) -> CarrierInfo {
        CarrierInfo {
            id: CarrierId::new(CarrierKind::Soft, &[serial]),
            kind: CarrierKind::Soft,
            label: label.into(),
            manufacturer: "ukey".into(),
            model: "soft".into(),
            serial: serial.into(),
            location: "/tmp".into(),
            atr: None,
            usb: None,
            catalog_entry: None,
            software: true,
            read_only: false,
            initialized: true,
        }
    }

    fn key(label: &str, id: &[u8]) -> KeyObject {
        KeyObject {
            id: ObjectId(id.to_vec()),
            label: label.into(),
            algorithm: KeyAlgorithm::Sm2,
            public_key: None,
            always_authenticate: false,
            mechanisms: vec![],
            certificate: None,
        }
    }

    #[test]
    fn token_names_match_label_serial_id_and_uri() {
        let alice = info("Alice", "0001");
        for name in ["Alice", "0001", "soft:0001"] {
            assert!(TokenSpec::parse(name).unwrap().matches(&alice), "{name}");
        }
        assert!(!TokenSpec::parse("alice").unwrap().matches(&alice));
        assert!(TokenSpec::parse("pkcs11:token=Alice").unwrap().matches(&alice));
        assert!(!TokenSpec::parse("pkcs11:token=Alice;serial=2").unwrap().matches(&alice));
        assert!(TokenSpec::parse("pkcs11:object=x").is_err());
        assert!(TokenSpec::parse("").is_err());
    }

    #[test]
    fn key_names_match_label_hex_id_cert_label_and_uri() {
        let k = key("sign", &[0xab, 0x01]);
        let mut objects = ObjectList::default();
        assert!(KeySpec::parse("sign").unwrap().matches(&k, &objects));
        assert!(KeySpec::parse("ab01").unwrap().matches(&k, &objects));
        assert!(KeySpec::parse("ab:01").unwrap().matches(&k, &objects));
        assert!(!KeySpec::parse("ab").unwrap().matches(&k, &objects));
        assert!(KeySpec::parse("pkcs11:id=%AB%01").unwrap().matches(&k, &objects));
        assert!(KeySpec::parse("pkcs11:object=sign;type=private").unwrap().matches(&k, &objects));
        assert!(!KeySpec::parse("pkcs11:object=sign;id=%01").unwrap().matches(&k, &objects));
        assert!(KeySpec::parse("pkcs11:object=x;type=data").is_err());
        assert!(!KeySpec::parse("Alice cert").unwrap().matches(&k, &objects));
        objects.certificates.push(ukey_api::CertificateObject {
            id: k.id.clone(),
            label: "Alice cert".into(),
            info: ukey_api::CertificateInfo {
                der: vec![],
                subject: String::new(),
                issuer: String::new(),
                serial: String::new(),
                not_before: 0,
                not_after: 0,
                key_usage: vec![],
                key_algorithm: None,
                public_key: vec![],
                sha256_fingerprint: String::new(),
            },
        });
        assert!(KeySpec::parse("Alice cert").unwrap().matches(&k, &objects));
    }

    #[test]
    fn no_carriers_says_how_to_create_one() {
        let inventory = Inventory { carriers: vec![], problems: vec![] };
        let Err(err) = select_carrier(&inventory, None) else { panic!("found a carrier in an empty inventory") };
        assert!(matches!(err, Error::NotFound(_)));
        assert!(err.to_string().contains("ukey token init --soft"), "{err}");
    }
}
