//! Any PIV card behind any [`CardTransport`] as a ukey [`Carrier`].
//!
//! Each contract operation is one card transaction that starts with SELECT (another process may
//! have selected another application in between) and ends with the PIN logged out. What is safe
//! to keep for the life of the card session is read once at [`PivCarrier::open`]: the CHUID (the
//! card's identity) and the discovery object (which PIN to present). Key algorithms learned from
//! certificates or key generation are remembered per slot, so signing needs no extra read.
//!
//! Credentials: PIN operations take the PIN or PUK from the caller. Writes (key generation,
//! certificate import and removal, initialisation) also need the card management key, which
//! comes from [`PivOptions::management_key`] or `UKEY_PIV_MGMT_KEY` (see
//! [`crate::piv::management`]); the factory default is used, with a warning, when neither is set.

mod init;
mod proof;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use ukey_api::carrier::{
    Capabilities, Carrier, CertificateImport, Credential, DataObjectWrite, InitRequest, KeyGenRequest,
};
use ukey_api::crypto::prepare::SignData;
use ukey_api::crypto::verify::verify_signature;
use ukey_api::crypto::{CarrierKeySigner, CertificateOptions, parse_name, self_signed};
use ukey_api::mechanism::MechanismKind;
use ukey_api::{
    CarrierId, CarrierInfo, CarrierKind, CertificateInfo, CertificateObject, DataObjectInfo, Error, InputForm,
    KeyAlgorithm, KeyObject, Mechanism, ObjectId, ObjectList, ObjectProblem, Pin, PinRole, PinState, PinStatus, Result,
    SecretBytes, SignInput,
};

use crate::piv::chuid::{self, Chuid, PinPolicy};
use crate::piv::objects::{REF_GLOBAL_PIN, REF_PIN, REF_PUK, TAG_CHUID, TAG_DISCOVERY, algorithm_id};
use crate::piv::signing::{ec_input, ecdsa_der_to_raw, pkcs1_v15_block, pss_sha256_block};
use crate::piv::{ManagementKey, PinProbe, Piv, Slot};
use crate::transport::{CardTransport, with_transaction};

/// Settings a driver passes to every PIV carrier it opens.
#[derive(Debug, Clone, Default)]
pub struct PivOptions {
    /// The card management key; `None` reads `UKEY_PIV_MGMT_KEY` when a write needs it.
    pub management_key: Option<ManagementKey>,
}

/// What ukey knows about the key in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KnownKey {
    algorithm: KeyAlgorithm,
    spki: Vec<u8>,
}

struct Session {
    transport: Box<dyn CardTransport>,
    pin_ref: u8,
    known: BTreeMap<Slot, KnownKey>,
}

/// A PIV card as a ukey carrier.
pub struct PivCarrier {
    info: CarrierInfo,
    options: PivOptions,
    session: Mutex<Session>,
    /// Store a self-signed certificate beside every key generated (see
    /// [`PivCarrier::with_placeholder_certificates`]).
    placeholder_certificates: bool,
}

/// The mechanisms a PIV key of this algorithm makes (all from a host-computed digest).
fn mechanisms_for(algorithm: KeyAlgorithm) -> Vec<MechanismKind> {
    match algorithm {
        KeyAlgorithm::P256 | KeyAlgorithm::P384 => vec![MechanismKind::EcdsaSha256, MechanismKind::EcdsaSha384],
        KeyAlgorithm::Rsa { .. } => {
            vec![MechanismKind::RsaPkcs1Sha256, MechanismKind::RsaPssSha256, MechanismKind::RsaPkcs1]
        }
        KeyAlgorithm::Sm2 => vec![],
    }
}

fn pin_of(auth: &Credential, role: PinRole) -> Result<&Pin> {
    match auth {
        Credential::Pin(pin) => Ok(pin),
        Credential::ProtectedPath => {
            Err(Error::NotSupported(format!("entering the {role} on a reader PIN pad; type it in ukey instead")))
        }
    }
}

impl PivCarrier {
    /// Opens the PIV application on a card: selects it and reads what identifies it. Fails with
    /// `NotSupported` when the card has no PIV application.
    pub fn open(transport: Box<dyn CardTransport>, kind: CarrierKind, options: PivOptions) -> Result<Self> {
        let mut transport = transport;
        let (select, chuid, policy) = with_transaction(transport.as_mut(), |ch| {
            let mut piv = Piv::new(ch);
            let select = piv.select()?;
            let chuid = match piv.get_data(TAG_CHUID)? {
                Some(object) => Some(Chuid::parse(&object)?),
                None => None,
            };
            let policy = match piv.get_data(TAG_DISCOVERY) {
                Ok(Some(object)) => chuid::pin_policy(&object).unwrap_or(PinPolicy::PivPin),
                Ok(None) => PinPolicy::PivPin,
                // Some cards refuse the discovery tag outright; the PIV PIN is the default.
                Err(Error::TokenRemoved) => return Err(Error::TokenRemoved),
                Err(_) => PinPolicy::PivPin,
            };
            Ok((select, chuid, policy))
        })?;
        let atr = transport.atr();
        let location = transport.location();
        let serial = chuid.as_ref().and_then(Chuid::serial);
        let id = match &serial {
            Some(serial) => CarrierId::new(kind, &["piv", serial]),
            // No CHUID: the best stable name left is the reader and the ATR.
            None => CarrierId::new(kind, &["piv", &location, &hex::encode_upper(&atr)]),
        };
        let model = select.label.clone().unwrap_or_else(|| "PIV card".into());
        let info = CarrierInfo {
            id,
            kind,
            label: model.clone(),
            manufacturer: String::new(),
            model,
            serial: serial.unwrap_or_default(),
            location,
            atr: Some(atr),
            usb: None,
            catalog_entry: None,
            software: false,
            read_only: false,
            initialized: chuid.is_some(),
        };
        let pin_ref = if policy == PinPolicy::GlobalPin { REF_GLOBAL_PIN } else { REF_PIN };
        Ok(PivCarrier {
            info,
            options,
            session: Mutex::new(Session { transport, pin_ref, known: BTreeMap::new() }),
            placeholder_certificates: false,
        })
    }

    /// Makes [`Carrier::generate_key`] store a self-signed certificate (subject `CN=` the key's
    /// label) in the new key's slot. A PIV card gives no way to read a public key back, so
    /// without a certificate a generated key is invisible to every later process, to OpenSC and
    /// to other middleware: `ukey keygen` followed by `ukey csr` would find no key. Importing the
    /// real certificate replaces the placeholder. Drivers serving the CLI and the agent turn it
    /// on; tests that script every APDU leave it off.
    pub fn with_placeholder_certificates(mut self) -> Self {
        self.placeholder_certificates = true;
        self
    }

    /// Stores the placeholder certificate of a freshly generated key; returns its fingerprint.
    fn store_placeholder_certificate(&self, key: &KeyObject, label: &str, auth: &Credential) -> Result<String> {
        let spki = key.public_key.clone().ok_or_else(|| Error::Device("the card returned no public key".into()))?;
        let signer = CarrierKeySigner::new(self, key.id.clone(), spki, auth)?;
        let subject = match parse_name(&format!("CN={}", label.trim())) {
            Ok(name) if !label.trim().is_empty() => name,
            _ => parse_name(&format!("CN={}", key.label.replace(',', " ")))?,
        };
        let der = self_signed(&signer, &subject, &CertificateOptions::default())?;
        let stored =
            self.import_certificate(&CertificateImport { der, label: None, id: Some(key.id.clone()) }, auth)?;
        Ok(stored.info.sha256_fingerprint)
    }

    /// Lets a driver fill in what it knows beyond the card (catalog entry, manufacturer).
    pub fn info_mut(&mut self) -> &mut CarrierInfo {
        &mut self.info
    }

    fn lock(&self) -> Result<MutexGuard<'_, Session>> {
        self.session.lock().map_err(|_| Error::Busy("a previous operation on this card failed midway".into()))
    }

    /// Runs `work` in one card transaction, after SELECT.
    fn run<T>(&self, mut work: impl FnMut(&mut Piv<'_, '_>, &mut SessionState<'_>) -> Result<T>) -> Result<T> {
        let mut guard = self.lock()?;
        let Session { transport, pin_ref, known } = &mut *guard;
        let mut state = SessionState { pin_ref: *pin_ref, known };
        with_transaction(transport.as_mut(), |ch| {
            let mut piv = Piv::new(ch);
            piv.select()?;
            work(&mut piv, &mut state)
        })
    }

    fn management_key(&self) -> Result<ManagementKey> {
        match &self.options.management_key {
            Some(k) => Ok(k.clone()),
            None => ManagementKey::from_env(),
        }
    }

    /// Reads every certificate the card shows (primary slots, and retired ones the key history
    /// announces), remembering each slot's key algorithm.
    fn list(piv: &mut Piv<'_, '_>, state: &mut SessionState<'_>) -> Result<ObjectList> {
        let mut list = ObjectList::default();
        let retired = match piv.retired_certificates() {
            Ok(n) => n.unwrap_or(0),
            Err(Error::TokenRemoved) => return Err(Error::TokenRemoved),
            Err(e) => {
                list.problems.push(ObjectProblem { object: "key history".into(), reason: e.to_string() });
                0
            }
        };
        for slot in Slot::PRIMARY {
            Self::list_slot(piv, state, slot, &mut list)?;
        }
        // Retired slots are read only as far as the key history says certificates exist.
        let mut retired_found = 0u8;
        for slot in Slot::retired() {
            if retired_found >= retired {
                break;
            }
            if Self::list_slot(piv, state, slot, &mut list)? {
                retired_found += 1;
            }
        }
        // Keys generated in this session that have no certificate yet.
        for (slot, key) in state.known.iter() {
            let id = ObjectId(vec![slot.reference()]);
            if list.keys.iter().all(|k| k.id != id) {
                list.keys.push(KeyObject {
                    id,
                    label: slot.label(),
                    algorithm: key.algorithm,
                    public_key: Some(key.spki.clone()),
                    always_authenticate: slot.always_authenticate(),
                    mechanisms: mechanisms_for(key.algorithm),
                    certificate: None,
                });
            }
        }
        Ok(list)
    }

    /// Reads one slot's certificate into `list`; true when the slot held one.
    fn list_slot(
        piv: &mut Piv<'_, '_>,
        state: &mut SessionState<'_>,
        slot: Slot,
        list: &mut ObjectList,
    ) -> Result<bool> {
        let der = match piv.read_certificate(slot) {
            Ok(Some(der)) => der,
            Ok(None) => return Ok(false),
            Err(Error::TokenRemoved) => return Err(Error::TokenRemoved),
            Err(e) => {
                list.problems.push(ObjectProblem { object: format!("slot {slot}"), reason: e.to_string() });
                return Ok(true);
            }
        };
        let info = match CertificateInfo::parse(&der) {
            Ok(info) => info,
            Err(e) => {
                list.problems
                    .push(ObjectProblem { object: format!("certificate in slot {slot}"), reason: e.to_string() });
                return Ok(true);
            }
        };
        let id = ObjectId(vec![slot.reference()]);
        if let Some(algorithm) = info.key_algorithm.filter(|a| algorithm_id(*a).is_ok()) {
            state.known.insert(slot, KnownKey { algorithm, spki: info.public_key.clone() });
            list.keys.push(KeyObject {
                id: id.clone(),
                label: slot.label(),
                algorithm,
                public_key: Some(info.public_key.clone()),
                always_authenticate: slot.always_authenticate(),
                mechanisms: mechanisms_for(algorithm),
                certificate: Some(info.sha256_fingerprint.clone()),
            });
        } else {
            list.problems.push(ObjectProblem {
                object: format!("key in slot {slot}"),
                reason: "its certificate names a key algorithm PIV cards do not hold".into(),
            });
        }
        list.certificates.push(CertificateObject { id, label: slot.label(), info });
        Ok(true)
    }

    /// Signs `digest`-derived input with the key in `slot`, trying the algorithms the key may
    /// have when ukey does not know it yet. The PIN is verified right before (slot 9C demands
    /// it) and logged out after.
    fn sign_in_session(
        piv: &mut Piv<'_, '_>,
        state: &mut SessionState<'_>,
        slot: Slot,
        mechanism: &Mechanism,
        digest: &[u8],
        pin: Option<&Pin>,
    ) -> Result<Vec<u8>> {
        let candidates: Vec<KeyAlgorithm> = match state.known.get(&slot) {
            Some(k) => vec![k.algorithm],
            None => [KeyAlgorithm::P256, KeyAlgorithm::P384, KeyAlgorithm::Rsa { bits: 2048 }]
                .into_iter()
                .filter(|a| mechanism.works_with(*a))
                .collect(),
        };
        if let Some(first) = candidates.first() {
            mechanism.check_key(*first)?;
        } else {
            return Err(Error::NotSupported(format!("{mechanism} signatures on PIV cards")));
        }
        if digest.len() != mechanism.hash().output_len() {
            return Err(Error::InvalidInput(format!(
                "{mechanism} signs a {}-byte digest, got {} bytes",
                mechanism.hash().output_len(),
                digest.len()
            )));
        }
        let result = (|| {
            for algorithm in &candidates {
                if slot.needs_pin() {
                    let pin = pin.ok_or(Error::LoginRequired(PinRole::User))?;
                    piv.verify(state.pin_ref, pin)?;
                }
                let alg_id = algorithm_id(*algorithm)?;
                let input = match (algorithm, mechanism) {
                    (KeyAlgorithm::Rsa { bits }, Mechanism::RsaPssSha256) => pss_sha256_block(digest, *bits as usize)?,
                    (KeyAlgorithm::Rsa { bits }, _) => pkcs1_v15_block(digest, mechanism.hash(), *bits as usize / 8)?,
                    (a, _) => ec_input(digest, a.ec_field_len().unwrap_or(32)),
                };
                let Some(sig) = piv.try_sign_raw(slot, alg_id, &input)? else { continue };
                let sig = match algorithm.ec_field_len() {
                    Some(field) => ecdsa_der_to_raw(&sig, field)?,
                    None => {
                        let len = (algorithm_bits(*algorithm) / 8).max(sig.len());
                        let mut out = vec![0u8; len - sig.len()];
                        out.extend_from_slice(&sig);
                        out
                    }
                };
                if let Some(known) = state.known.get(&slot) {
                    check_matches_known_key(slot, &known.spki, mechanism, digest, &sig)?;
                }
                return Ok(sig);
            }
            Err(Error::NotFound(format!("a key usable for {mechanism} in slot {slot}")))
        })();
        if slot.needs_pin() && !matches!(result, Err(Error::TokenRemoved)) {
            piv.logout(state.pin_ref)?;
        }
        result
    }
}

impl PivCarrier {
    /// GENERATE ASYMMETRIC KEY PAIR in the named (or first free) slot, authorised by the PIN and
    /// the management key.
    fn generate_key_only(&self, request: &KeyGenRequest, auth: &Credential) -> Result<KeyObject> {
        let alg_id = algorithm_id(request.algorithm)?;
        let pin = pin_of(auth, PinRole::User)?;
        let named = request.id.as_ref().map(|id| Slot::from_id(&id.0)).transpose()?;
        let mgmt = self.management_key()?;
        self.run(|piv, state| {
            // The holder's PIN authorises the change; the management key lets the card accept it.
            piv.verify(state.pin_ref, pin)?;
            let result = (|| {
                let slot = match named {
                    Some(slot) => slot,
                    None => {
                        let mut free = None;
                        for slot in Slot::PRIMARY {
                            if piv.read_certificate(slot)?.is_none() && !state.known.contains_key(&slot) {
                                free = Some(slot);
                                break;
                            }
                        }
                        free.ok_or_else(|| {
                            Error::InvalidInput(
                                "every PIV slot (9a, 9c, 9d, 9e) holds a key; name the one to overwrite with its id"
                                    .into(),
                            )
                        })?
                    }
                };
                piv.authenticate_management(&mgmt)?;
                // The old certificate goes BEFORE the new key is made. Deleting it after GENERATE
                // left a window (card pulled out, reader unplugged, pcscd killed) in which the
                // slot held the new key beside the old key's certificate: every later listing
                // named a public key the card no longer had. Cut off here instead, the slot
                // lists no key (the old key is still in it, unlisted), which claims nothing
                // false, and a new keygen finishes the job. If the card refuses GENERATE, the
                // old certificate is put back: nothing the holder had is lost to a refusal.
                let old_certificate = match named {
                    Some(slot) => piv.get_data(slot.certificate_tag())?,
                    None => None,
                };
                if old_certificate.is_some() {
                    log::info!("removing the certificate of slot {slot} before its key is replaced");
                    piv.delete_certificate(slot)?;
                    state.known.remove(&slot);
                }
                let (algorithm, spki) = match piv.generate(slot, alg_id) {
                    Ok(generated) => generated,
                    Err(Error::TokenRemoved) => return Err(Error::TokenRemoved),
                    Err(e) => {
                        if let Some(old) = &old_certificate {
                            match piv.put_data(slot.certificate_tag(), old) {
                                Ok(()) => log::info!("the card refused the new key; slot {slot} keeps its certificate"),
                                Err(put) => log::warn!("slot {slot}: the old certificate could not be put back: {put}"),
                            }
                        }
                        return Err(e);
                    }
                };
                state.known.insert(slot, KnownKey { algorithm, spki: spki.clone() });
                Ok(KeyObject {
                    id: ObjectId(vec![slot.reference()]),
                    label: slot.label(),
                    algorithm,
                    public_key: Some(spki),
                    always_authenticate: slot.always_authenticate(),
                    mechanisms: mechanisms_for(algorithm),
                    certificate: None,
                })
            })();
            if !matches!(result, Err(Error::TokenRemoved)) {
                piv.logout(state.pin_ref)?;
            }
            result
        })
    }
}

/// Refuses a signature that the public key ukey reports for `slot` (from its certificate, or
/// from key generation) does not verify. A PIV card keeps no public key, so a certificate that
/// no longer belongs to the slot's key (another program generated a key without replacing the
/// certificate, or a key generation was cut short by an older ukey) is only found out by
/// signing; handing such a signature out would let the holder sign with a key their
/// certificate does not vouch for, and every verifier would reject it later.
fn check_matches_known_key(slot: Slot, spki: &[u8], mechanism: &Mechanism, digest: &[u8], sig: &[u8]) -> Result<()> {
    match verify_signature(spki, mechanism, SignData::Digest(digest), sig) {
        Ok(()) => Ok(()),
        Err(Error::Crypto(_)) => Err(Error::Device(format!(
            "the key in slot {slot} does not match the certificate stored for it (the key was replaced without its \
             certificate, or a key generation was interrupted); generate the key again or import its certificate"
        ))),
        // The listed key cannot be used to check (a form the verifier does not take): the card's
        // own answer stands.
        Err(e) => {
            log::debug!("the signature from slot {slot} could not be checked against its certificate: {e}");
            Ok(())
        }
    }
}

fn algorithm_bits(a: KeyAlgorithm) -> usize {
    match a {
        KeyAlgorithm::Rsa { bits } => bits as usize,
        _ => 0,
    }
}

/// The per-session state a transaction may read and update.
struct SessionState<'s> {
    pin_ref: u8,
    known: &'s mut BTreeMap<Slot, KnownKey>,
}

impl Carrier for PivCarrier {
    fn info(&self) -> &CarrierInfo {
        &self.info
    }

    fn capabilities(&self) -> Result<Capabilities> {
        Ok(Capabilities {
            sign: vec![
                (MechanismKind::EcdsaSha256, InputForm::Digest),
                (MechanismKind::EcdsaSha384, InputForm::Digest),
                (MechanismKind::RsaPkcs1Sha256, InputForm::Digest),
                (MechanismKind::RsaPssSha256, InputForm::Digest),
                (MechanismKind::RsaPkcs1, InputForm::Digest),
            ],
            generate: vec![KeyAlgorithm::P256, KeyAlgorithm::P384, KeyAlgorithm::Rsa { bits: 2048 }],
            import_certificate: true,
            data_objects: false,
            change_pin: true,
            unblock_pin: true,
            initialize: true,
            pin_length: Some((6, 8)),
        })
    }

    fn pin_state(&self) -> Result<PinState> {
        let probe = self.run(|piv, state| piv.probe_pin(state.pin_ref))?;
        let user = match probe {
            PinProbe::Verified => PinStatus::default(),
            PinProbe::Retries(n) => PinStatus { retries_left: Some(n), final_try: n == 1, ..PinStatus::default() },
            PinProbe::Blocked => PinStatus { retries_left: Some(0), locked: true, ..PinStatus::default() },
        };
        // PIV offers no way to read the PUK counter without spending a try.
        Ok(PinState { user, so: PinStatus::default(), protected_path: false })
    }

    fn objects(&self) -> Result<ObjectList> {
        self.run(Self::list)
    }

    fn sign(&self, key: &ObjectId, mechanism: &Mechanism, input: &SignInput, auth: &Credential) -> Result<Vec<u8>> {
        let slot = Slot::from_id(&key.0)?;
        let pin = if slot.needs_pin() { Some(pin_of(auth, PinRole::User)?) } else { None };
        self.run(|piv, state| Self::sign_in_session(piv, state, slot, mechanism, &input.digest, pin))
    }

    fn generate_key(&self, request: &KeyGenRequest, auth: &Credential) -> Result<KeyObject> {
        let mut key = self.generate_key_only(request, auth)?;
        if self.placeholder_certificates {
            match self.store_placeholder_certificate(&key, &request.label, auth) {
                Ok(fingerprint) => key.certificate = Some(fingerprint),
                // The card left: the key generation did not finish in a way the next process can
                // see (the slot holds the new key without a certificate), so say it failed.
                Err(Error::TokenRemoved) => return Err(Error::TokenRemoved),
                // The key exists and this process knows it; only later processes will not.
                Err(e) => log::warn!("no placeholder certificate stored for the key in slot {}: {e}", key.id),
            }
        }
        Ok(key)
    }
    fn import_certificate(&self, request: &CertificateImport, auth: &Credential) -> Result<CertificateObject> {
        let info = CertificateInfo::parse(&request.der)?;
        let algorithm = info
            .key_algorithm
            .filter(|a| algorithm_id(*a).is_ok())
            .ok_or_else(|| Error::NotSupported("the certificate's key algorithm cannot live on a PIV card".into()))?;
        let named = request.id.as_ref().map(|id| Slot::from_id(&id.0)).transpose()?;
        let pin = pin_of(auth, PinRole::User)?;
        let mgmt = self.management_key()?;
        self.run(|piv, state| {
            let by_key = |known: &BTreeMap<Slot, KnownKey>| {
                known.iter().find(|(_, k)| k.spki == info.public_key).map(|(s, _)| *s)
            };
            let slot = match named {
                Some(slot) => slot,
                None => match by_key(state.known) {
                    Some(slot) => slot,
                    None => {
                        Self::list(piv, state)?;
                        by_key(state.known).ok_or_else(|| {
                            Error::InvalidInput(
                                "no key on the card is known to match this certificate; name its slot with the key id \
                                 (9a, 9c, 9d, 9e)"
                                    .into(),
                            )
                        })?
                    }
                },
            };
            match state.known.get(&slot) {
                Some(k) if k.spki == info.public_key => {}
                Some(_) => {
                    return Err(Error::InvalidInput(format!(
                        "the certificate's public key is not the key in slot {slot}; refusing to store it"
                    )));
                }
                None => {
                    // The card keeps no public key: have the slot's key sign and check it.
                    let mechanism = algorithm.default_mechanism();
                    let digest = proof::random_digest(mechanism.hash().output_len())?;
                    let sig = Self::sign_in_session(piv, state, slot, &mechanism, &digest, Some(pin))?;
                    if !proof::verifies(&info.public_key, algorithm, &digest, &sig) {
                        return Err(Error::InvalidInput(format!(
                            "the certificate's public key is not the key in slot {slot}; refusing to store it"
                        )));
                    }
                }
            }
            piv.verify(state.pin_ref, pin)?;
            let result = (|| {
                piv.authenticate_management(&mgmt)?;
                piv.write_certificate(slot, &info.der)
            })();
            if !matches!(result, Err(Error::TokenRemoved)) {
                piv.logout(state.pin_ref)?;
            }
            result?;
            state.known.insert(slot, KnownKey { algorithm, spki: info.public_key.clone() });
            Ok(CertificateObject { id: ObjectId(vec![slot.reference()]), label: slot.label(), info: info.clone() })
        })
    }

    fn write_data(&self, _request: &DataObjectWrite, _auth: &Credential) -> Result<DataObjectInfo> {
        Err(Error::NotSupported("data objects on PIV cards; PIV stores keys and certificates only here".into()))
    }

    fn read_data(&self, _label: &str, _auth: Option<&Credential>) -> Result<SecretBytes> {
        Err(Error::NotSupported("data objects on PIV cards; PIV stores keys and certificates only here".into()))
    }

    fn delete_object(&self, id: &ObjectId, _label: Option<&str>, auth: &Credential) -> Result<()> {
        let slot = Slot::from_id(&id.0)?;
        let pin = pin_of(auth, PinRole::User)?;
        let mgmt = self.management_key()?;
        self.run(|piv, state| {
            piv.verify(state.pin_ref, pin)?;
            let result = (|| {
                piv.authenticate_management(&mgmt)?;
                // PIV keys cannot be deleted, only overwritten: the certificate goes.
                piv.delete_certificate(slot)
            })();
            if !matches!(result, Err(Error::TokenRemoved)) {
                piv.logout(state.pin_ref)?;
            }
            result?;
            state.known.remove(&slot);
            Ok(())
        })
    }

    fn verify_pin(&self, role: PinRole, auth: &Credential) -> Result<()> {
        let pin = pin_of(auth, role)?;
        self.run(|piv, state| match role {
            PinRole::User => {
                piv.verify(state.pin_ref, pin)?;
                piv.logout(state.pin_ref)
            }
            // The PUK cannot be verified alone; changing it to itself checks it.
            PinRole::So => piv.change_reference(REF_PUK, pin, pin),
        })
    }

    fn change_pin(&self, role: PinRole, old: &Credential, new: &Pin) -> Result<()> {
        let old = pin_of(old, role)?;
        self.run(|piv, state| {
            let reference = if role == PinRole::User { state.pin_ref } else { REF_PUK };
            piv.change_reference(reference, old, new)
        })
    }

    fn unblock_pin(&self, so: &Credential, new_user_pin: &Pin) -> Result<()> {
        let puk = pin_of(so, PinRole::So)?;
        self.run(|piv, _| piv.unblock(puk, new_user_pin))
    }

    fn initialize(&self, request: &InitRequest) -> Result<()> {
        self.run(|piv, state| {
            init::initialize(piv, state.pin_ref, request)?;
            state.known.clear();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
