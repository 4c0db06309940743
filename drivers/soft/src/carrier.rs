//! One soft token as a [`Carrier`].
//!
//! Each call is a transaction of its own: lock the token file, re-read it, check the PIN (spending
//! the try on disk first), do the work, write the new state atomically, unlock. Nothing secret is
//! kept in the handle between calls.

use std::fmt;
use std::path::{Path, PathBuf};

use ukey_api::{
    Capabilities, Carrier, CarrierInfo, CertificateImport, CertificateInfo, CertificateObject, Credential,
    DataObjectInfo, DataObjectWrite, Error, InitRequest, InputForm, KeyGenRequest, KeyObject, Mechanism, ObjectId,
    ObjectList, Pin, PinRole, PinState, Result, SecretBytes, SignInput,
};

use crate::config::StoreConfig;
use crate::create::fresh_state;
use crate::format::{CertRecord, DataRecord, DataValue, KeyRecord, key_id_for_spki, public_key_bits};
use crate::keys;
use crate::listing::{carrier_info, key_object, object_list, pin_state};
use crate::naming::{check_object_label, check_token_label};
use crate::pins::{MAX_PIN_LEN, MIN_PIN_LEN, MasterKey, check_pin_length, new_record};
use crate::seal::{OpenError, open, seal};
use crate::store::Store;
use crate::txn::{TokenFiles, Txn, pin_record};
use ukey_api::mechanism::MechanismKind;

/// Largest data object the soft token stores.
pub const MAX_DATA_LEN: usize = 1024 * 1024;

/// A soft token in a store directory.
pub struct SoftToken {
    info: CarrierInfo,
    files: TokenFiles,
    store: Store,
    config: StoreConfig,
}

impl fmt::Debug for SoftToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftToken").field("id", &self.info.id).field("path", &self.files.path).finish()
    }
}

impl SoftToken {
    /// Opens the token with `serial` in `store`, reading its identity.
    pub(crate) fn open(store: Store, serial: &str, config: StoreConfig) -> Result<SoftToken> {
        let files = store.files(serial);
        let info = files.read(|state| Ok(carrier_info(state, &files.path)))?;
        Ok(SoftToken { info, files, store, config })
    }

    /// The token file.
    pub fn path(&self) -> &Path {
        &self.files.path
    }

    /// The token's lock file (held by every operation).
    pub fn lock_path(&self) -> PathBuf {
        self.files.lock.clone()
    }

    /// Deletes the token's files after checking the SO PIN (or with none, if the SO PIN is
    /// locked: the keys can no longer be reached anyway, and the files may be removed by hand).
    pub(crate) fn delete(&self, so: &Credential) -> Result<()> {
        let _store_lock = self.store.lock()?;
        self.files.update(|txn| {
            if !txn.state.so_pin.locked() {
                txn.unlock(PinRole::So, so, true)?;
            }
            txn.delete_file()
        })?;
        let _ = std::fs::remove_file(&self.files.lock);
        log::info!("deleted soft token {}", self.info.serial);
        Ok(())
    }

    fn missing_key(&self, id: &ObjectId) -> Error {
        Error::NotFound(format!(
            "no key with id {id} on the soft token `{}` (serial {})",
            self.info.label, self.info.serial
        ))
    }
}

/// Associated data binding a sealed private key to its token and id.
fn key_aad(serial: &str, id: &ObjectId) -> Vec<u8> {
    format!("ukey-soft/v1/key/{serial}/{id}").into_bytes()
}

/// Associated data binding a sealed data object to its token and label.
fn data_aad(serial: &str, label: &str) -> Vec<u8> {
    let mut aad = format!("ukey-soft/v1/data/{serial}/").into_bytes();
    aad.extend_from_slice(label.as_bytes());
    aad
}

/// Opens a value sealed under the master key; a failure means the file was tampered with or
/// damaged (the master key itself opened fine).
fn open_sealed(
    txn: &Txn<'_>,
    master: &MasterKey,
    aad: &[u8],
    sealed: &crate::seal::Sealed,
    what: &str,
) -> Result<SecretBytes> {
    open(master, aad, sealed).map_err(|e| Error::Corrupt {
        path: txn.path().to_path_buf(),
        reason: match e {
            OpenError::Unauthentic => format!("{what} does not decrypt under the token's master key"),
            OpenError::Malformed(reason) => format!("{what}: {reason}"),
        },
    })
}

impl Carrier for SoftToken {
    fn info(&self) -> &CarrierInfo {
        &self.info
    }

    fn capabilities(&self) -> Result<Capabilities> {
        Ok(Capabilities {
            sign: MechanismKind::ALL.into_iter().map(|k| (k, InputForm::Digest)).collect(),
            generate: keys::SUPPORTED.to_vec(),
            import_certificate: true,
            data_objects: true,
            change_pin: true,
            unblock_pin: true,
            initialize: true,
            pin_length: Some((MIN_PIN_LEN, MAX_PIN_LEN)),
        })
    }

    fn pin_state(&self) -> Result<PinState> {
        self.files.read(|state| Ok(pin_state(state)))
    }

    fn objects(&self) -> Result<ObjectList> {
        self.files.read(|state| Ok(object_list(state)))
    }

    fn sign(&self, key: &ObjectId, mechanism: &Mechanism, input: &SignInput, auth: &Credential) -> Result<Vec<u8>> {
        let expected = mechanism.hash().output_len();
        if input.digest.len() != expected {
            return Err(Error::InvalidInput(format!(
                "the soft token signs a {} digest of {expected} bytes for {mechanism}; got {} bytes",
                mechanism.hash().as_str(),
                input.digest.len()
            )));
        }
        let (algorithm, pkcs8) = self.files.update(|txn| {
            let record = txn.state.keys.iter().find(|k| &k.id == key).cloned().ok_or_else(|| self.missing_key(key))?;
            mechanism.check_key(record.algorithm)?;
            let master = txn.unlock(PinRole::User, auth, false)?;
            let aad = key_aad(&txn.state.serial, &record.id);
            let pkcs8 = open_sealed(txn, &master, &aad, &record.private_key, &format!("key {}", record.id))?;
            Ok((record.algorithm, pkcs8))
        })?;
        keys::sign(algorithm, &pkcs8, mechanism, input)
    }

    fn generate_key(&self, request: &KeyGenRequest, auth: &Credential) -> Result<KeyObject> {
        keys::check_supported(request.algorithm)?;
        check_object_label(&request.label)?;
        if request.id.as_ref().is_some_and(|id| id.0.is_empty()) {
            return Err(Error::InvalidInput(
                "the key id is empty; give at least one byte, or none to let ukey choose".into(),
            ));
        }
        let key = self.files.update(|txn| {
            if let Some(id) = &request.id {
                if txn.state.keys.iter().any(|k| &k.id == id) {
                    return Err(Error::InvalidInput(format!(
                        "the soft token already holds a key with id {id}; choose another id or delete that key"
                    )));
                }
            }
            let master = txn.unlock(PinRole::User, auth, false)?;
            let generated = keys::generate(request.algorithm)?;
            let id = match &request.id {
                Some(id) => id.clone(),
                None => key_id_for_spki(&generated.spki)?,
            };
            if txn.state.keys.iter().any(|k| k.id == id) {
                return Err(Error::Crypto(format!("a freshly generated key collides with key {id}; try again")));
            }
            let private_key = seal(&master, &key_aad(&txn.state.serial, &id), &generated.pkcs8)?;
            let record = KeyRecord {
                id,
                label: request.label.clone(),
                algorithm: request.algorithm,
                public_key: generated.spki,
                private_key,
            };
            let object = key_object(&record, None);
            txn.state.keys.push(record);
            Ok(object)
        })?;
        log::info!("generated {} key {} on soft token {}", key.algorithm, key.id, self.info.serial);
        Ok(key)
    }

    fn import_certificate(&self, request: &CertificateImport, auth: &Credential) -> Result<CertificateObject> {
        let info = CertificateInfo::parse(&request.der)?;
        let bits = public_key_bits(&info.public_key)?;
        if let Some(label) = &request.label {
            check_object_label(label)?;
        }
        let object = self.files.update(|txn| {
            let matching = txn
                .state
                .keys
                .iter()
                .find(|k| public_key_bits(&k.public_key).is_ok_and(|b| b == bits))
                .cloned();
            let key = match (matching, &request.id) {
                (Some(k), Some(id)) if &k.id != id => {
                    return Err(Error::InvalidInput(format!(
                        "the certificate `{}` belongs to key {} on this token, not to key {id}",
                        info.subject_cn(),
                        k.id
                    )));
                }
                (Some(k), _) => k,
                (None, _) => {
                    return Err(Error::InvalidInput(format!(
                        "the certificate `{}` ({} public key) matches no key on the soft token `{}`; import it onto the token that holds its private key, or generate the key here and get a certificate for it",
                        info.subject_cn(),
                        info.key_algorithm.map(|a| a.name()).unwrap_or_else(|| "unsupported".into()),
                        txn.state.label
                    )));
                }
            };
            txn.unlock(PinRole::User, auth, false)?;
            let label = request.label.clone().unwrap_or_else(|| key.label.clone());
            txn.state.certificates.retain(|c| c.id != key.id);
            txn.state.certificates.push(CertRecord { id: key.id.clone(), label: label.clone(), der: info.der.clone() });
            Ok(CertificateObject { id: key.id, label, info })
        })?;
        log::info!("imported certificate {} on soft token {}", object.info.sha256_fingerprint, self.info.serial);
        Ok(object)
    }

    fn write_data(&self, request: &DataObjectWrite, auth: &Credential) -> Result<DataObjectInfo> {
        check_object_label(&request.label)?;
        if request.application.chars().count() > crate::naming::MAX_OBJECT_LABEL {
            return Err(Error::InvalidInput("the data object's application name is longer than 128 characters".into()));
        }
        if request.value.len() > MAX_DATA_LEN {
            return Err(Error::InvalidInput(format!(
                "the data object is {} bytes; the soft token stores at most {MAX_DATA_LEN}",
                request.value.len()
            )));
        }
        self.files.update(|txn| {
            let master = txn.unlock(PinRole::User, auth, false)?;
            let value = if request.private {
                DataValue::Private {
                    sealed: seal(&master, &data_aad(&txn.state.serial, &request.label), &request.value)?,
                }
            } else {
                DataValue::Public { bytes: request.value.to_vec() }
            };
            let record = DataRecord {
                id: request.id.clone().unwrap_or(ObjectId(Vec::new())),
                label: request.label.clone(),
                application: request.application.clone(),
                value,
            };
            let info = DataObjectInfo {
                id: record.id.clone(),
                label: record.label.clone(),
                application: record.application.clone(),
                private: record.private(),
                size: Some(request.value.len()),
            };
            txn.state.data.retain(|d| d.label != request.label);
            txn.state.data.push(record);
            Ok(info)
        })
    }

    fn read_data(&self, label: &str, auth: Option<&Credential>) -> Result<SecretBytes> {
        let not_found =
            || Error::NotFound(format!("no data object labelled `{label}` on the soft token `{}`", self.info.label));
        let public = self.files.read(|state| {
            let record = state.data.iter().find(|d| d.label == label).ok_or_else(not_found)?;
            Ok(match &record.value {
                DataValue::Public { bytes } => Some(SecretBytes::new(bytes.clone())),
                DataValue::Private { .. } => None,
            })
        })?;
        if let Some(bytes) = public {
            return Ok(bytes);
        }
        let auth = auth.ok_or(Error::LoginRequired(PinRole::User))?;
        self.files.update(|txn| {
            let record = txn.state.data.iter().find(|d| d.label == label).cloned().ok_or_else(not_found)?;
            let master = txn.unlock(PinRole::User, auth, false)?;
            match &record.value {
                DataValue::Public { bytes } => Ok(SecretBytes::new(bytes.clone())),
                DataValue::Private { sealed } => {
                    let aad = data_aad(&txn.state.serial, &record.label);
                    open_sealed(txn, &master, &aad, sealed, &format!("data object `{label}`"))
                }
            }
        })
    }

    fn delete_object(&self, id: &ObjectId, label: Option<&str>, auth: &Credential) -> Result<()> {
        if id.0.is_empty() && label.is_none() {
            return Err(Error::InvalidInput("name the object to delete by id, label, or both".into()));
        }
        let matches = |obj_id: &ObjectId, obj_label: &str| {
            (id.0.is_empty() || obj_id == id) && label.is_none_or(|l| l == obj_label)
        };
        self.files.update(|txn| {
            let state = &txn.state;
            let found = state.keys.iter().filter(|k| matches(&k.id, &k.label)).count()
                + state.certificates.iter().filter(|c| matches(&c.id, &c.label)).count()
                + state.data.iter().filter(|d| matches(&d.id, &d.label)).count();
            if found == 0 {
                return Err(Error::NotFound(format!(
                    "no object with id {id}{} on the soft token `{}`",
                    label.map(|l| format!(" and label `{l}`")).unwrap_or_default(),
                    state.label
                )));
            }
            txn.unlock(PinRole::User, auth, false)?;
            txn.state.keys.retain(|k| !matches(&k.id, &k.label));
            txn.state.certificates.retain(|c| !matches(&c.id, &c.label));
            txn.state.data.retain(|d| !matches(&d.id, &d.label));
            Ok(())
        })
    }

    fn verify_pin(&self, role: PinRole, auth: &Credential) -> Result<()> {
        self.files.update(|txn| txn.unlock(role, auth, false).map(|_| ()))
    }

    fn change_pin(&self, role: PinRole, old: &Credential, new: &Pin) -> Result<()> {
        check_pin_length(new, role)?;
        let kdf = self.config.kdf;
        self.files.update(|txn| {
            let master = txn.unlock(role, old, true)?;
            let serial = txn.state.serial.clone();
            let record = pin_record(&mut txn.state, role);
            *record = new_record(new, role, &serial, &master, kdf, record.max_tries)?;
            Ok(())
        })?;
        log::info!("changed the {role} of soft token {}", self.info.serial);
        Ok(())
    }

    fn unblock_pin(&self, so: &Credential, new_user_pin: &Pin) -> Result<()> {
        check_pin_length(new_user_pin, PinRole::User)?;
        let kdf = self.config.kdf;
        self.files.update(|txn| {
            let master = txn.unlock(PinRole::So, so, false)?;
            let serial = txn.state.serial.clone();
            let max_tries = txn.state.user_pin.max_tries;
            txn.state.user_pin = new_record(new_user_pin, PinRole::User, &serial, &master, kdf, max_tries)?;
            Ok(())
        })?;
        log::info!("unblocked the user PIN of soft token {} with the SO PIN", self.info.serial);
        Ok(())
    }

    /// Re-initialises the token: a new master key, the label and PINs of the request, and no
    /// objects (everything stored before is gone for good). Authorised by the current SO PIN; when
    /// the SO PIN is locked, by nobody — the request's SO PIN becomes the new one, since with a
    /// locked SO PIN the only way left is to start over.
    fn initialize(&self, request: &InitRequest) -> Result<()> {
        check_token_label(&request.label)?;
        let user_pin = request.user_pin.as_ref().ok_or_else(|| {
            Error::InvalidInput("initialising a software token needs the new user PIN as well as the SO PIN".into())
        })?;
        check_pin_length(&request.so_pin, PinRole::So)?;
        check_pin_length(user_pin, PinRole::User)?;
        let _store_lock = self.store.lock()?;
        self.store.check_label_free(&request.label, Some(&self.info.serial))?;
        let config = self.config;
        self.files.update(|txn| {
            if txn.state.so_pin.locked() {
                log::warn!("re-initialising soft token {} whose SO PIN is locked", txn.state.serial);
            } else {
                txn.unlock(PinRole::So, &Credential::Pin(request.so_pin.clone()), true)?;
            }
            let created = txn.state.created;
            let mut fresh = fresh_state(&request.label, &txn.state.serial, &request.so_pin, user_pin, &config)?;
            fresh.created = created;
            txn.state = fresh;
            Ok(())
        })?;
        log::info!("re-initialised soft token {}; all its objects were erased", self.info.serial);
        Ok(())
    }
}
