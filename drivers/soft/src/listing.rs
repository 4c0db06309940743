//! What a soft token shows about itself: carrier identity, PIN state and object list, all
//! computed from the stored state without any PIN.

use std::path::Path;

use ukey_api::{
    CarrierId, CarrierInfo, CarrierKind, CertificateInfo, CertificateObject, DataObjectInfo, KeyAlgorithm, KeyObject,
    ObjectList, ObjectProblem, PinState, PinStatus,
};

use crate::format::{CertRecord, KeyRecord, PinRecord, TokenState};
use ukey_api::mechanism::MechanismKind;

/// Manufacturer every soft token reports.
pub const MANUFACTURER: &str = "ukey";

/// Model every soft token reports.
pub const MODEL: &str = "Software token";

/// The carrier identity of a stored token.
pub fn carrier_info(state: &TokenState, path: &Path) -> CarrierInfo {
    CarrierInfo {
        id: CarrierId::new(CarrierKind::Soft, &[&state.serial]),
        kind: CarrierKind::Soft,
        label: state.label.clone(),
        manufacturer: MANUFACTURER.into(),
        model: MODEL.into(),
        serial: state.serial.clone(),
        location: path.display().to_string(),
        atr: None,
        usb: None,
        catalog_entry: None,
        software: true,
        read_only: false,
        initialized: true,
    }
}

/// Both PINs' state.
pub fn pin_state(state: &TokenState) -> PinState {
    PinState { user: pin_status(&state.user_pin), so: pin_status(&state.so_pin), protected_path: false }
}

fn pin_status(record: &PinRecord) -> PinStatus {
    PinStatus {
        retries_left: Some(record.tries_left),
        max_retries: Some(record.max_tries),
        locked: record.locked(),
        count_low: record.tries_left < record.max_tries,
        final_try: record.tries_left == 1,
        // Soft tokens are created with PINs the person chose; there is no factory default.
        default_pin: Some(false),
        must_change: record.must_change,
    }
}

/// Mechanisms a key of this algorithm can make on the soft token.
pub fn mechanisms_for(alg: KeyAlgorithm) -> Vec<MechanismKind> {
    MechanismKind::ALL.into_iter().filter(|k| k.with_default_params().works_with(alg)).collect()
}

/// Certificates, keys and data objects; certificates that do not parse go to `problems`.
pub fn object_list(state: &TokenState) -> ObjectList {
    let mut list = ObjectList::default();
    for cert in &state.certificates {
        match certificate_object(cert) {
            Ok(obj) => list.certificates.push(obj),
            Err(reason) => list.problems.push(ObjectProblem { object: format!("certificate {}", cert.label), reason }),
        }
    }
    for key in &state.keys {
        let certificate = list.certificate_for(&key.id).map(|c| c.info.sha256_fingerprint.clone());
        list.keys.push(key_object(key, certificate));
    }
    for data in &state.data {
        list.data.push(DataObjectInfo {
            id: data.id.clone(),
            label: data.label.clone(),
            application: data.application.clone(),
            private: data.private(),
            size: Some(data.size()),
        });
    }
    list
}

/// The public description of a stored key.
pub fn key_object(key: &KeyRecord, certificate: Option<String>) -> KeyObject {
    KeyObject {
        id: key.id.clone(),
        label: key.label.clone(),
        algorithm: key.algorithm,
        public_key: Some(key.public_key.clone()),
        always_authenticate: false,
        mechanisms: mechanisms_for(key.algorithm),
        certificate,
    }
}

/// The parsed form of a stored certificate.
pub fn certificate_object(cert: &CertRecord) -> Result<CertificateObject, String> {
    let info = CertificateInfo::parse(&cert.der).map_err(|e| e.to_string())?;
    Ok(CertificateObject { id: cert.id.clone(), label: cert.label.clone(), info })
}
