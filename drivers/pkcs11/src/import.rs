//! Writing objects: certificates next to their keys, data objects, and deleting objects.
//!
//! A certificate is stored as `CKO_CERTIFICATE` / `CKC_X_509` with the `CKA_ID` of the key whose
//! public key it carries, and with `CKA_SUBJECT`, `CKA_ISSUER` and `CKA_SERIAL_NUMBER` in DER so
//! other PKCS#11 clients (Firefox, OpenSSL's pkcs11 provider, p11tool) find it. Nothing stored is
//! replaced silently: a different certificate under the same id is refused, and a data object is
//! replaced only after its new copy was written.

use cryptoki::object::{Attribute, CertificateType, ObjectClass, ObjectHandle};
use der::{Decode, DecodePem, Encode};
use log::debug;
use ukey_api::{
    CertificateImport, CertificateInfo, CertificateObject, DataObjectInfo, DataObjectWrite, Error, ObjectId, Result,
    SecretBytes,
};
use x509_cert::Certificate;

use crate::objects::{self, KeyFacts};
use crate::session::Tx;

/// Stores a certificate next to its key; the caller has logged the user in.
pub fn import_certificate(tx: &mut Tx<'_>, request: &CertificateImport) -> Result<CertificateObject> {
    let info = CertificateInfo::parse(&request.der)?;
    let cert = if request.der.trim_ascii_start().starts_with(b"-----BEGIN") {
        Certificate::from_pem(&request.der)
    } else {
        Certificate::from_der(&request.der)
    }
    .map_err(|e| Error::InvalidInput(format!("not an X.509 certificate: {e}")))?;
    let tbs = cert.tbs_certificate();
    let der_of = |what: &str, r: der::Result<Vec<u8>>| {
        r.map_err(|e| Error::InvalidInput(format!("the certificate's {what} does not encode: {e}")))
    };
    let subject = der_of("subject", tbs.subject().to_der())?;
    let issuer = der_of("issuer", tbs.issuer().to_der())?;
    let serial = der_of("serial number", tbs.serial_number().to_der())?;

    let key = matching_key(tx, &info, request.id.as_ref())?;
    let id = ObjectId(key.id.clone());
    let label = request.label.clone().filter(|l| !l.trim().is_empty()).unwrap_or_else(|| key.label.clone());

    let stored = objects::find(
        tx,
        &[Attribute::Class(ObjectClass::CERTIFICATE), Attribute::Id(id.0.clone())],
        "looking for certificates of the key",
    )?;
    if let Some(handle) = stored.first() {
        let value = tx.session()?.get_attributes(*handle, &[cryptoki::object::AttributeType::Value]);
        let value = value.map_err(|e| tx.fail(e, "reading a stored certificate"))?;
        if value.iter().any(|a| matches!(a, Attribute::Value(v) if *v == info.der)) {
            debug!("certificate {} is already stored; nothing to do", info.sha256_fingerprint);
            return Ok(CertificateObject { id, label, info });
        }
        return Err(Error::InvalidInput(format!(
            "key {id} already has a different certificate; delete it first (`ukey delete`) if it is to be replaced"
        )));
    }

    let template = vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.0.clone()),
        Attribute::Subject(subject),
        Attribute::Issuer(issuer),
        Attribute::SerialNumber(serial),
        Attribute::Value(info.der.clone()),
    ];
    let created = tx.session()?.create_object(&template);
    created.map_err(|e| tx.fail(e, "storing the certificate"))?;
    Ok(CertificateObject { id, label, info })
}

/// The key the certificate belongs to: by id when given (its public key must match when the
/// token shows one), else by public key among the token's keys.
fn matching_key(tx: &mut Tx<'_>, info: &CertificateInfo, id: Option<&ObjectId>) -> Result<KeyFacts> {
    let mut keys = Vec::new();
    for class in [ObjectClass::PUBLIC_KEY, ObjectClass::PRIVATE_KEY] {
        let mut template = vec![Attribute::Class(class)];
        if let Some(id) = id {
            template.push(Attribute::Id(id.0.clone()));
        }
        for handle in objects::find(tx, &template, "looking for the certificate's key")? {
            if let Ok(facts) = objects::read_key(tx, handle)? {
                keys.push(facts);
            }
        }
    }
    let matches_cert = |k: &KeyFacts| k.spki.as_deref() == Some(info.public_key.as_slice());
    if let Some(found) = keys.iter().find(|k| matches_cert(k)) {
        return Ok(found.clone());
    }
    if let Some(id) = id {
        // The key exists but its public key is not readable (private EC keys carry no point):
        // accept it when the algorithm agrees.
        let same_algorithm = keys.iter().find(|k| k.spki.is_none() && Some(k.algorithm) == info.key_algorithm);
        if let Some(found) = same_algorithm {
            return Ok(found.clone());
        }
        if keys.is_empty() {
            return Err(Error::NotFound(format!("no key with id {id} on this token")));
        }
        return Err(Error::InvalidInput(format!(
            "the certificate's public key does not match key {id}; check that this is the right certificate"
        )));
    }
    Err(Error::InvalidInput(
        "the certificate's public key matches no key on this token; generate or import its key first, or check that this is the right certificate".into(),
    ))
}

/// Creates or replaces a data object (same label and application); the caller has logged in.
pub fn write_data(tx: &mut Tx<'_>, request: &DataObjectWrite) -> Result<DataObjectInfo> {
    if request.label.trim().is_empty() {
        return Err(Error::InvalidInput("a data object needs a label".into()));
    }
    let old: Vec<ObjectHandle> = objects::find_data(tx, &request.label, None)?
        .into_iter()
        .filter(|h| application_of(tx, *h).as_deref() == Some(request.application.as_str()))
        .collect();
    let mut template = vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(request.private),
        Attribute::Label(request.label.as_bytes().to_vec()),
        Attribute::Application(request.application.as_bytes().to_vec()),
        Attribute::Value(request.value.to_vec()),
    ];
    if let Some(id) = request.id.as_ref().filter(|i| !i.0.is_empty()) {
        template.push(Attribute::ObjectId(id.0.clone()));
    }
    let created = tx.session()?.create_object(&template);
    created.map_err(|e| tx.fail(e, &format!("writing data object `{}`", request.label)))?;
    for handle in old {
        let destroyed = tx.session()?.destroy_object(handle);
        destroyed.map_err(|e| tx.fail(e, &format!("removing the old copy of data object `{}`", request.label)))?;
    }
    Ok(DataObjectInfo {
        id: request.id.clone().unwrap_or(ObjectId(Vec::new())),
        label: request.label.clone(),
        application: request.application.clone(),
        private: request.private,
        size: Some(request.value.len()),
    })
}

fn application_of(tx: &mut Tx<'_>, handle: ObjectHandle) -> Option<String> {
    let attrs = tx.session().ok()?.get_attributes(handle, &[cryptoki::object::AttributeType::Application]).ok()?;
    attrs.into_iter().find_map(|a| match a {
        Attribute::Application(v) => Some(objects::label_text(&v)),
        _ => None,
    })
}

/// Reads one data object by label.
pub fn read_data(tx: &mut Tx<'_>, label: &str) -> Result<SecretBytes> {
    let handles = objects::find_data(tx, label, None)?;
    let handle = match handles.as_slice() {
        [] => {
            return Err(Error::NotFound(format!(
                "no data object labelled `{label}` is visible (private ones need the PIN)"
            )));
        }
        [one] => *one,
        many => {
            let mut candidates = Vec::new();
            for h in many {
                candidates.push(format!("application `{}`", application_of(tx, *h).unwrap_or_default()));
            }
            return Err(Error::Ambiguous { what: format!("data object `{label}`"), candidates });
        }
    };
    let attrs = tx.session()?.get_attributes(handle, &[cryptoki::object::AttributeType::Value]);
    let attrs = attrs.map_err(|e| tx.fail(e, &format!("reading data object `{label}`")))?;
    attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(SecretBytes::new(v)),
            _ => None,
        })
        .ok_or_else(|| Error::PermissionDenied(format!("the token does not reveal the value of `{label}`")))
}

/// Deletes the objects with `id` (and `label`, when given): key pair, certificate, data objects.
pub fn delete(tx: &mut Tx<'_>, id: &ObjectId, label: Option<&str>) -> Result<usize> {
    let mut template = Vec::new();
    if !id.0.is_empty() {
        template.push(Attribute::Id(id.0.clone()));
    }
    if let Some(label) = label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if template.is_empty() {
        return Err(Error::InvalidInput("name the object to delete by id or label".into()));
    }
    let mut handles = Vec::new();
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY, ObjectClass::CERTIFICATE, ObjectClass::DATA] {
        let mut t = vec![Attribute::Class(class)];
        t.extend(template.iter().cloned());
        handles.extend(objects::find(tx, &t, "looking for the objects to delete")?);
    }
    if handles.is_empty() && id.0.is_empty() {
        return Err(Error::NotFound(format!("no object labelled `{}`", label.unwrap_or_default())));
    }
    if handles.is_empty() {
        return Err(Error::NotFound(format!(
            "no object with id {id}{}",
            label.map(|l| format!(" and label `{l}`")).unwrap_or_default()
        )));
    }
    for handle in &handles {
        let destroyed = tx.session()?.destroy_object(*handle);
        destroyed.map_err(|e| tx.fail(e, "deleting an object"))?;
    }
    Ok(handles.len())
}
