//! Reading objects: certificates, keys and data objects, and finding the one an operation names.
//!
//! Certificates (`CKO_CERTIFICATE`, `CKC_X_509`) pair with keys by `CKA_ID`. Without a login most
//! tokens hide private keys, so the key list also comes from public-key objects, and algorithm
//! and public key from whichever of the two is visible. An object that cannot be read or parsed
//! becomes an [`ObjectProblem`] beside the others, never an error that hides them.

use std::collections::BTreeMap;

use cryptoki::error::Error as CkError;
use cryptoki::object::{Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle};
use log::debug;
use ukey_api::{
    CertificateInfo, CertificateObject, DataObjectInfo, Error, KeyAlgorithm, KeyObject, ObjectId, ObjectList,
    ObjectProblem, Result,
};

use crate::pubkey::{self, CKK_EC, CKK_RSA};
use crate::session::{FoundKey, Tx};
use crate::sign::Offered;

/// What ukey knows about one key object (private or public).
#[derive(Debug, Clone)]
pub struct KeyFacts {
    /// The object handle (valid in the current login).
    pub handle: ObjectHandle,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// `CKA_LABEL` as text.
    pub label: String,
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// SubjectPublicKeyInfo DER, when the attributes carry the public key.
    pub spki: Option<Vec<u8>>,
    /// The uncompressed EC point, for EC and SM2 keys whose point is readable.
    pub point: Option<Vec<u8>>,
    /// `CKA_ALWAYS_AUTHENTICATE` (private keys only).
    pub always_authenticate: bool,
}

impl KeyFacts {
    /// What an operation keeps about a private key.
    pub fn found(&self) -> FoundKey {
        FoundKey {
            handle: self.handle,
            algorithm: self.algorithm,
            always_authenticate: self.always_authenticate,
            public_point: self.point.clone(),
        }
    }
}

/// `CKA_KEY_TYPE` and what ukey keeps about a key, read in one call.
const KEY_ATTRIBUTES_WITH_TYPE: [AttributeType; 8] = [
    AttributeType::KeyType,
    AttributeType::Id,
    AttributeType::Label,
    AttributeType::EcParams,
    AttributeType::EcPoint,
    AttributeType::Modulus,
    AttributeType::PublicExponent,
    AttributeType::AlwaysAuthenticate,
];

/// The same without `CKA_KEY_TYPE`, for a vendor key type cryptoki cannot name.
const KEY_ATTRIBUTES: &[AttributeType] = KEY_ATTRIBUTES_WITH_TYPE.split_at(1).1;

/// Text of a `CKA_LABEL` (labels are UTF-8 by the standard; anything else is shown lossily).
pub fn label_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end_matches(['\0', ' ']).to_string()
}

/// Reads a key object's attributes. `Ok(Err(reason))` is a key ukey cannot use (unknown
/// algorithm, unreadable attributes), reported as a problem by the caller.
pub fn read_key(tx: &mut Tx<'_>, handle: ObjectHandle) -> Result<std::result::Result<KeyFacts, String>> {
    // The key type comes in the same C_GetAttributeValue as the rest; only a vendor key type
    // cryptoki cannot name (SM2 below CKK_VENDOR_DEFINED) takes the separate raw read.
    let (attrs, key_type) = match tx.session()?.get_attributes(handle, &KEY_ATTRIBUTES_WITH_TYPE) {
        Ok(attrs) => {
            let key_type = attrs.iter().find_map(|a| match a {
                Attribute::KeyType(t) => Some(crate::raw::wide(**t)),
                _ => None,
            });
            (attrs, key_type)
        }
        Err(e) if crate::errors::is_removal(&e) => return Err(tx.fail(e, "reading a key")),
        Err(CkError::NotSupported | CkError::InvalidValue) => {
            let attrs = match tx.session()?.get_attributes(handle, KEY_ATTRIBUTES) {
                Ok(a) => a,
                Err(e) if crate::errors::is_removal(&e) => return Err(tx.fail(e, "reading a key")),
                Err(e) => return Ok(Err(format!("its attributes cannot be read: {e}"))),
            };
            (attrs, key_type(tx, handle)?)
        }
        Err(e) => return Ok(Err(format!("its attributes cannot be read: {e}"))),
    };
    let key_type = match key_type {
        Some(t) => t,
        None => return Ok(Err("it has no readable CKA_KEY_TYPE".into())),
    };
    let mut facts = KeyFacts {
        handle,
        id: Vec::new(),
        label: String::new(),
        algorithm: KeyAlgorithm::P256,
        spki: None,
        point: None,
        always_authenticate: false,
    };
    let (mut params, mut point, mut modulus, mut exponent) = (None, None, None, None);
    for attr in attrs {
        match attr {
            Attribute::Id(v) => facts.id = v,
            Attribute::Label(v) => facts.label = label_text(&v),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exponent = Some(v),
            Attribute::AlwaysAuthenticate(v) => facts.always_authenticate = v,
            _ => {}
        }
    }
    let sm2_key_type = tx.token().settings().sm2.as_ref().and_then(|p| p.key_type);
    facts.algorithm = match key_type {
        CKK_RSA => match &modulus {
            Some(m) => KeyAlgorithm::Rsa { bits: pubkey::rsa_bits(m) },
            None => return Ok(Err("an RSA key without a readable modulus".into())),
        },
        CKK_EC => match params.as_deref().and_then(pubkey::curve_from_params) {
            Some(alg) => alg,
            None => return Ok(Err("an EC key on a curve ukey does not support (P-256, P-384, SM2 are)".into())),
        },
        t if Some(t) == sm2_key_type => KeyAlgorithm::Sm2,
        t => return Ok(Err(format!("key type {t:#x} is not supported by ukey (RSA, EC P-256/P-384, SM2 are)"))),
    };
    match facts.algorithm {
        KeyAlgorithm::Rsa { .. } => {
            if let (Some(m), Some(e)) = (&modulus, &exponent) {
                facts.spki = pubkey::rsa_spki(m, e).ok();
            }
        }
        alg => {
            if let Some(p) = point.as_deref().and_then(|p| pubkey::ec_point(p, alg).ok()) {
                facts.spki = pubkey::ec_spki(alg, &p).ok();
                facts.point = Some(p);
            }
        }
    }
    Ok(Ok(facts))
}

/// `CKA_KEY_TYPE` as a number: through cryptoki for the values it knows, through the raw call
/// for vendor values below `CKK_VENDOR_DEFINED` that cryptoki refuses.
fn key_type(tx: &mut Tx<'_>, handle: ObjectHandle) -> Result<Option<u64>> {
    match tx.session()?.get_attributes(handle, &[AttributeType::KeyType]) {
        Ok(attrs) => Ok(attrs.into_iter().find_map(|a| match a {
            Attribute::KeyType(t) => Some(crate::raw::wide(*t)),
            _ => None,
        })),
        Err(e) if crate::errors::is_removal(&e) => Err(tx.fail(e, "reading a key type")),
        Err(CkError::NotSupported | CkError::InvalidValue) => {
            let raw = tx.token().module().raw().map_err(Error::Device)?;
            raw.key_type(tx.session()?, handle).map_err(|e| tx.fail(e, "reading a vendor key type"))
        }
        Err(e) => Err(tx.fail(e, "reading a key type")),
    }
}

/// Finds objects matching a template.
pub fn find(tx: &mut Tx<'_>, template: &[Attribute], during: &str) -> Result<Vec<ObjectHandle>> {
    let found = tx.session()?.find_objects(template);
    found.map_err(|e| tx.fail(e, during))
}

/// Finds the one private key with `CKA_ID` = `id` (after login).
pub fn find_private_key(tx: &mut Tx<'_>, id: &ObjectId) -> Result<KeyFacts> {
    let during = format!("looking up private key {id}");
    let handles = find(tx, &[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id.0.clone())], &during)?;
    let mut keys = Vec::new();
    for handle in handles {
        match read_key(tx, handle)? {
            Ok(facts) => keys.push(facts),
            Err(reason) => {
                return Err(Error::NotSupported(format!("private key {id} cannot be used: {reason}")));
            }
        }
    }
    match keys.len() {
        0 => Err(Error::NotFound(format!("no private key with id {id} on this token; `ukey keys` lists them"))),
        1 => Ok(keys.remove(0)),
        _ => Err(Error::Ambiguous {
            what: format!("key id {id}"),
            candidates: keys.iter().map(|k| format!("label `{}` (object handle {})", k.label, k.handle)).collect(),
        }),
    }
}

/// Everything on the token that can be read without a login.
pub fn list(tx: &mut Tx<'_>, offered: &Offered) -> Result<ObjectList> {
    let mut out = ObjectList::default();
    list_certificates(tx, &mut out)?;
    list_keys(tx, offered, &mut out)?;
    list_data(tx, &mut out)?;
    Ok(out)
}

fn describe(kind: &str, label: &str, id: &[u8]) -> String {
    format!("{kind} `{label}` (id {})", hex::encode(id))
}

fn list_certificates(tx: &mut Tx<'_>, out: &mut ObjectList) -> Result<()> {
    let handles = find(tx, &[Attribute::Class(ObjectClass::CERTIFICATE)], "listing certificates")?;
    for handle in handles {
        let attrs = tx.session()?.get_attributes(
            handle,
            &[AttributeType::CertificateType, AttributeType::Id, AttributeType::Label, AttributeType::Value],
        );
        let attrs = match attrs {
            Ok(a) => a,
            Err(e) if crate::errors::is_removal(&e) => return Err(tx.fail(e, "reading a certificate")),
            Err(e) => {
                out.problems.push(ObjectProblem {
                    object: format!("certificate object {handle}"),
                    reason: format!("its attributes cannot be read: {e}"),
                });
                continue;
            }
        };
        let (mut id, mut label, mut value, mut x509) = (Vec::new(), String::new(), None, true);
        for attr in attrs {
            match attr {
                Attribute::CertificateType(t) => x509 = t == CertificateType::X_509,
                Attribute::Id(v) => id = v,
                Attribute::Label(v) => label = label_text(&v),
                Attribute::Value(v) => value = Some(v),
                _ => {}
            }
        }
        if !x509 {
            debug!("certificate object {handle} is not X.509; skipped");
            continue;
        }
        let Some(value) = value else {
            out.problems.push(ObjectProblem {
                object: describe("certificate", &label, &id),
                reason: "it has no CKA_VALUE".into(),
            });
            continue;
        };
        match CertificateInfo::parse(&value) {
            Ok(info) => out.certificates.push(CertificateObject { id: ObjectId(id), label, info }),
            Err(e) => out.problems.push(ObjectProblem {
                object: describe("certificate", &label, &id),
                reason: format!("its value is not a usable X.509 certificate: {e}"),
            }),
        }
    }
    Ok(())
}

fn list_keys(tx: &mut Tx<'_>, offered: &Offered, out: &mut ObjectList) -> Result<()> {
    // By CKA_ID: the private key when visible, else the public key; the public key and the
    // certificate fill in what the private key does not show.
    let mut by_id: BTreeMap<Vec<u8>, (Option<KeyFacts>, Option<KeyFacts>)> = BTreeMap::new();
    let mut privates_without_id = Vec::new();
    for (class, is_private) in [(ObjectClass::PRIVATE_KEY, true), (ObjectClass::PUBLIC_KEY, false)] {
        let handles = find(tx, &[Attribute::Class(class)], "listing keys")?;
        for handle in handles {
            match read_key(tx, handle)? {
                Ok(facts) => {
                    if is_private && facts.id.is_empty() {
                        privates_without_id.push(facts);
                        continue;
                    }
                    let entry = by_id.entry(facts.id.clone()).or_default();
                    let slot = if is_private { &mut entry.0 } else { &mut entry.1 };
                    if slot.is_none() {
                        *slot = Some(facts);
                    } else if is_private {
                        // Two private keys with one id: list both, signing by that id will ask
                        // which one is meant.
                        privates_without_id.push(facts);
                    }
                }
                Err(reason) => out.problems.push(ObjectProblem {
                    object: format!("{} object {handle}", if is_private { "private key" } else { "public key" }),
                    reason,
                }),
            }
        }
    }
    let push = |private: Option<KeyFacts>, public: Option<KeyFacts>, out: &mut ObjectList| {
        let Some(main) = private.clone().or_else(|| public.clone()) else { return };
        let id = ObjectId(main.id.clone());
        let certificate = out.certificate_for(&id);
        let public_key = main
            .spki
            .clone()
            .or_else(|| public.as_ref().and_then(|p| p.spki.clone()))
            .or_else(|| certificate.map(|c| c.info.public_key.clone()));
        let label = if main.label.is_empty() {
            public
                .as_ref()
                .map(|p| p.label.clone())
                .or_else(|| certificate.map(|c| c.label.clone()))
                .unwrap_or_default()
        } else {
            main.label.clone()
        };
        out.keys.push(KeyObject {
            id,
            label,
            algorithm: main.algorithm,
            public_key,
            always_authenticate: private.as_ref().is_some_and(|p| p.always_authenticate),
            mechanisms: offered.mechanisms_for(main.algorithm),
            certificate: certificate.map(|c| c.info.sha256_fingerprint.clone()),
        });
    };
    for (_, (private, public)) in by_id {
        push(private, public, out);
    }
    for extra in privates_without_id {
        push(Some(extra), None, out);
    }
    Ok(())
}

fn list_data(tx: &mut Tx<'_>, out: &mut ObjectList) -> Result<()> {
    let handles = find(tx, &[Attribute::Class(ObjectClass::DATA)], "listing data objects")?;
    for handle in handles {
        let attrs = tx.session()?.get_attributes(
            handle,
            &[AttributeType::Label, AttributeType::Application, AttributeType::ObjectId, AttributeType::Private],
        );
        let attrs = match attrs {
            Ok(a) => a,
            Err(e) if crate::errors::is_removal(&e) => return Err(tx.fail(e, "reading a data object")),
            Err(e) => {
                out.problems.push(ObjectProblem {
                    object: format!("data object {handle}"),
                    reason: format!("its attributes cannot be read: {e}"),
                });
                continue;
            }
        };
        let mut info = DataObjectInfo {
            id: ObjectId(Vec::new()),
            label: String::new(),
            application: String::new(),
            private: false,
            size: None,
        };
        for attr in attrs {
            match attr {
                Attribute::Label(v) => info.label = label_text(&v),
                Attribute::Application(v) => info.application = label_text(&v),
                Attribute::ObjectId(v) => info.id = ObjectId(v),
                Attribute::Private(v) => info.private = v,
                _ => {}
            }
        }
        if let Ok(sizes) = tx.session()?.get_attribute_info(handle, &[AttributeType::Value])
            && let Some(cryptoki::object::AttributeInfo::Available(n)) = sizes.first()
        {
            info.size = Some(*n);
        }
        out.data.push(info);
    }
    Ok(())
}

/// Finds the data objects with a label (and, if given, a `CKA_OBJECT_ID`).
pub fn find_data(tx: &mut Tx<'_>, label: &str, id: Option<&ObjectId>) -> Result<Vec<ObjectHandle>> {
    let mut template = vec![Attribute::Class(ObjectClass::DATA), Attribute::Label(label.as_bytes().to_vec())];
    if let Some(id) = id.filter(|i| !i.0.is_empty()) {
        template.push(Attribute::ObjectId(id.0.clone()));
    }
    find(tx, &template, &format!("looking up data object `{label}`"))
}

/// The `CKA_KEY_TYPE` attribute for a template, vendor values included (passed as raw bytes,
/// since cryptoki cannot name values below `CKK_VENDOR_DEFINED` it does not know).
pub fn key_type_attribute(value: u64) -> Attribute {
    match value {
        CKK_EC => Attribute::KeyType(KeyType::EC),
        CKK_RSA => Attribute::KeyType(KeyType::RSA),
        other => Attribute::VendorDefined((
            AttributeType::VendorDefined(cryptoki_sys::CKA_KEY_TYPE),
            crate::raw::narrow(other).to_ne_bytes().to_vec(),
        )),
    }
}
