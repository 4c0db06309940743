//! A PKCS#11 token as a ukey [`Carrier`].
//!
//! Identity comes from the token info (label, manufacturer, model, serial, flags); the carrier id
//! is the module's short name plus the serial, so the same physical token gets the same id in
//! whichever slot it appears. Each operation is one transaction on the token's shared state
//! (`session.rs`), which logs out before returning unless the module keeps the login.

use std::sync::Arc;

use cryptoki::slot::{Slot, TokenInfo};
use ukey_api::mechanism::MechanismKind;
use ukey_api::{
    Capabilities, Carrier, CarrierId, CarrierInfo, CarrierKind, CertificateImport, CertificateObject, Credential,
    DataObjectInfo, DataObjectWrite, Error, InitRequest, InputForm, KeyGenRequest, KeyObject, Mechanism, ObjectId,
    ObjectList, Pin, PinRole, PinState, Result, SecretBytes, SignInput,
};

use crate::objects;
use crate::session::{Token, TokenSettings, Tx};
use crate::sign::{self, SignFailure};
use crate::sm2::Sm2Input;
use crate::{import, keygen, pin};

/// The carrier id of a token: module name and serial, or the slot for a token without one
/// (an uninitialised token).
pub fn carrier_id(settings: &TokenSettings, serial: &str, slot: Slot) -> CarrierId {
    let serial = serial.trim();
    if serial.is_empty() {
        CarrierId::new(CarrierKind::Pkcs11, &[&settings.module_name, &format!("slot-{}", slot.id())])
    } else {
        CarrierId::new(CarrierKind::Pkcs11, &[&settings.module_name, serial])
    }
}

/// Tokens whose keys live in host files: never a compliant hardware carrier.
fn is_software_token(info: &TokenInfo) -> bool {
    let known = ["softhsm", "nss "];
    let text = format!("{} {}", info.manufacturer_id(), info.model()).to_ascii_lowercase();
    known.iter().any(|k| text.contains(k))
}

/// The contract's identity record for a token.
pub fn carrier_info(settings: &TokenSettings, slot: Slot, info: &TokenInfo) -> CarrierInfo {
    CarrierInfo {
        id: carrier_id(settings, info.serial_number(), slot),
        kind: CarrierKind::Pkcs11,
        label: info.label().trim().to_string(),
        manufacturer: info.manufacturer_id().trim().to_string(),
        model: info.model().trim().to_string(),
        serial: info.serial_number().trim().to_string(),
        location: format!("{} slot {}", settings.module_path, slot.id()),
        atr: None,
        usb: None,
        catalog_entry: None,
        software: is_software_token(info),
        read_only: info.write_protected(),
        initialized: info.token_initialized(),
    }
}

/// One token reached through a PKCS#11 module.
pub struct Pkcs11Carrier {
    info: CarrierInfo,
    token: Arc<Token>,
}

impl std::fmt::Debug for Pkcs11Carrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Carrier").field("id", &self.info.id).finish_non_exhaustive()
    }
}

impl Pkcs11Carrier {
    /// A carrier for `token`, described by `info`.
    pub fn new(token: Arc<Token>, info: CarrierInfo) -> Self {
        Pkcs11Carrier { info, token }
    }

    /// The shared token state (benchmarks and the driver use it).
    pub fn token(&self) -> &Arc<Token> {
        &self.token
    }
}

fn sign_in(
    tx: &mut Tx<'_>,
    key: &ObjectId,
    mechanism: &Mechanism,
    input: &SignInput,
    auth: &Credential,
) -> Result<Vec<u8>> {
    if !tx.user_login_kept() {
        tx.login(PinRole::User, auth, &format!("signing with key {key}"))?;
    }
    let mut retried = false;
    loop {
        let found = match tx.cached_key(&key.0) {
            Some(k) => k,
            None => {
                let mut found = objects::find_private_key(tx, key)?.found();
                if found.public_point.is_none() && needs_point(tx, mechanism, found.algorithm)? {
                    found.public_point = public_point(tx, key)?;
                }
                tx.cache_key(&key.0, found.clone());
                found
            }
        };
        let offered = tx.offered()?;
        let plan = offered.plan(mechanism, found.algorithm)?;
        let data = sign::token_data(&plan, mechanism, found.public_point.as_deref(), input)?;
        match sign::sign_with(tx, &found, &plan, mechanism, &data, auth) {
            Ok(signature) => return Ok(signature),
            Err(SignFailure::StaleHandle) if !retried => {
                // SoftHSM invalidates key handles on logout; another application may have
                // replaced the key. Look it up again once.
                tx.forget_key(&key.0);
                retried = true;
            }
            Err(SignFailure::StaleHandle) => {
                return Err(Error::NotFound(format!("private key {key} disappeared while signing")));
            }
            Err(SignFailure::Other(e)) => return Err(e),
        }
    }
}

/// SM2 with `Z ‖ M` input needs the public point, which private keys rarely show.
fn needs_point(tx: &mut Tx<'_>, mechanism: &Mechanism, algorithm: ukey_api::KeyAlgorithm) -> Result<bool> {
    if algorithm != ukey_api::KeyAlgorithm::Sm2 || !matches!(mechanism, Mechanism::Sm2Sm3 { .. }) {
        return Ok(false);
    }
    Ok(tx.offered()?.sm2().is_some_and(|p| p.input == Sm2Input::ZAndMessage))
}

fn public_point(tx: &mut Tx<'_>, id: &ObjectId) -> Result<Option<Vec<u8>>> {
    let handles = objects::find(
        tx,
        &[
            cryptoki::object::Attribute::Class(cryptoki::object::ObjectClass::PUBLIC_KEY),
            cryptoki::object::Attribute::Id(id.0.clone()),
        ],
        "looking up the public key",
    )?;
    for handle in handles {
        if let Ok(facts) = objects::read_key(tx, handle)?
            && facts.point.is_some()
        {
            return Ok(facts.point);
        }
    }
    Ok(None)
}

impl Carrier for Pkcs11Carrier {
    fn info(&self) -> &CarrierInfo {
        &self.info
    }

    fn capabilities(&self) -> Result<Capabilities> {
        let uninitialized = || Capabilities { initialize: true, ..Default::default() };
        self.token.run_if_initialized("reading the token's capabilities", uninitialized, |tx| {
            let offered = tx.offered_with_keygen()?;
            let info = tx.token_info()?;
            let writable = !info.write_protected();
            Ok(Capabilities {
                sign: offered.sign_capabilities(),
                generate: if writable { offered.generate() } else { Vec::new() },
                import_certificate: writable,
                data_objects: writable,
                change_pin: true,
                unblock_pin: true,
                initialize: true,
                pin_length: Some((info.min_pin_length(), info.max_pin_length())),
            })
        })
    }

    fn sign_input_form(&self, mechanism: MechanismKind) -> Result<Option<InputForm>> {
        // Only the mechanism list: no key generation limits, no PIN lengths.
        self.token.run_if_initialized(
            "reading the token's mechanisms",
            || None,
            |tx| {
                let offered = tx.offered()?;
                Ok(offered.sign_capabilities().into_iter().find(|(m, _)| *m == mechanism).map(|(_, form)| form))
            },
        )
    }

    fn pin_state(&self) -> Result<PinState> {
        Ok(pin::pin_state(&self.token.token_info()?))
    }

    fn objects(&self) -> Result<ObjectList> {
        self.token.run_if_initialized("listing the token's objects", ObjectList::default, |tx| {
            let offered = tx.offered()?;
            objects::list(tx, &offered)
        })
    }

    fn sign(&self, key: &ObjectId, mechanism: &Mechanism, input: &SignInput, auth: &Credential) -> Result<Vec<u8>> {
        self.token.run("signing", |tx| sign_in(tx, key, mechanism, input, auth))
    }

    fn generate_key(&self, request: &KeyGenRequest, auth: &Credential) -> Result<KeyObject> {
        self.token.run("generating a key", |tx| {
            tx.login(PinRole::User, auth, "generating a key")?;
            keygen::generate(tx, request, auth)
        })
    }

    fn import_certificate(&self, request: &CertificateImport, auth: &Credential) -> Result<CertificateObject> {
        self.token.run("importing a certificate", |tx| {
            tx.login(PinRole::User, auth, "importing a certificate")?;
            import::import_certificate(tx, request)
        })
    }

    fn write_data(&self, request: &DataObjectWrite, auth: &Credential) -> Result<DataObjectInfo> {
        self.token.run("writing a data object", |tx| {
            tx.login(PinRole::User, auth, "writing a data object")?;
            import::write_data(tx, request)
        })
    }

    fn read_data(&self, label: &str, auth: Option<&Credential>) -> Result<SecretBytes> {
        self.token.run("reading a data object", |tx| {
            if let Some(auth) = auth {
                tx.login(PinRole::User, auth, "reading a data object")?;
            }
            import::read_data(tx, label)
        })
    }

    fn delete_object(&self, id: &ObjectId, label: Option<&str>, auth: &Credential) -> Result<()> {
        self.token.run("deleting objects", |tx| {
            tx.login(PinRole::User, auth, "deleting objects")?;
            import::delete(tx, id, label).map(|_| ())
        })
    }

    fn verify_pin(&self, role: PinRole, auth: &Credential) -> Result<()> {
        pin::verify(&self.token, role, auth)
    }

    fn change_pin(&self, role: PinRole, old: &Credential, new: &Pin) -> Result<()> {
        pin::change(&self.token, role, old, new)
    }

    fn unblock_pin(&self, so: &Credential, new_user_pin: &Pin) -> Result<()> {
        pin::unblock(&self.token, so, new_user_pin)
    }

    fn initialize(&self, request: &InitRequest) -> Result<()> {
        pin::initialize(&self.token, request).map(|_| ())
    }
}
