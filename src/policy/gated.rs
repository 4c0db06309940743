//! The custody gate around carriers the CLI drives directly (no agent running, or
//! `UKEY_NO_AGENT=1`): every operation that uses a carrier passes the same gate as the agent's,
//! so calling the CLI instead of the agent sidesteps nothing.
//!
//! [`GatedDriver`] wraps a driver; its carriers are [`GatedCarrier`]s, whose using operations
//! (sign, key generation, certificate import, data-object writes and deletes, PIN checks,
//! changes and unblocks, initialisation) ask the gate first and record the outcome — synced —
//! before returning. A refusal, or an outcome that cannot be recorded, is
//! [`Error::Refused`]: the result (a signature, say) is never handed back. Listing and reading
//! public objects are not uses and pass through. The calling account is this process's real
//! uid; the client is the `ukey` executable and its pid. Notices (no policy in force,
//! development mode, an unregistered carrier under `warn`) are printed on stderr at every use in
//! human mode (`ukey: notice: …`); with `--json` stderr carries only the JSON error document, and
//! the notices are in the use's intent record.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ukey_api::mechanism::MechanismKind;
use ukey_api::{
    Capabilities, Carrier, CarrierInfo, CarrierKind, CertificateImport, CertificateObject, Credential, DataObjectInfo,
    DataObjectWrite, Driver, DriverStatus, Error, EventSink, HashAlg, InitRequest, InputForm, KeyGenRequest, KeyObject,
    Mechanism, ObjectId, ObjectList, Pin, PinRole, PinState, SecretBytes, SignInput, Watch,
};

use crate::agent::gate::{ClientIdentity, Gate, Operation, Outcome, UseContext};

/// A driver whose carriers pass the gate.
pub struct GatedDriver {
    inner: Box<dyn Driver>,
    gate: Arc<dyn Gate>,
    show_notices: bool,
}

impl GatedDriver {
    /// Wraps `inner`; `show_notices` prints each use's notices on stderr.
    pub fn new(inner: Box<dyn Driver>, gate: Arc<dyn Gate>, show_notices: bool) -> Self {
        GatedDriver { inner, gate, show_notices }
    }
}

impl Driver for GatedDriver {
    fn kind(&self) -> CarrierKind {
        self.inner.kind()
    }

    fn carriers(&self) -> ukey_api::Result<Vec<Arc<dyn Carrier>>> {
        Ok(self
            .inner
            .carriers()?
            .into_iter()
            .map(|c| Arc::new(GatedCarrier::new(c, Arc::clone(&self.gate), self.show_notices)) as Arc<dyn Carrier>)
            .collect())
    }

    fn watch(&self, sink: EventSink) -> ukey_api::Result<Box<dyn Watch>> {
        self.inner.watch(sink)
    }

    fn status(&self) -> Vec<DriverStatus> {
        self.inner.status()
    }
}

/// How long a listing is reused for the certificate a use names. The CLI lists the carrier to
/// find the key and signs a few milliseconds later; listing everything again just for the
/// certificate's fingerprint was a quarter of a one-shot `ukey sign`'s token calls.
const LISTING_REUSE: Duration = Duration::from_secs(2);

/// A carrier whose uses pass the gate.
pub struct GatedCarrier {
    inner: Arc<dyn Carrier>,
    gate: Arc<dyn Gate>,
    show_notices: bool,
    /// The last listing and when it was made; dropped by every use that changes objects.
    listed: Mutex<Option<(Instant, ObjectList)>>,
}

impl GatedCarrier {
    /// Wraps `inner`; `show_notices` prints each use's notices on stderr.
    pub fn new(inner: Arc<dyn Carrier>, gate: Arc<dyn Gate>, show_notices: bool) -> Self {
        GatedCarrier { inner, gate, show_notices, listed: Mutex::new(None) }
    }

    fn listed(&self) -> std::sync::MutexGuard<'_, Option<(Instant, ObjectList)>> {
        self.listed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh listing of the carrier's objects, or the one made within [`LISTING_REUSE`].
    fn recent_objects(&self) -> ukey_api::Result<ObjectList> {
        if let Some((at, list)) = self.listed().as_ref()
            && at.elapsed() < LISTING_REUSE
        {
            return Ok(list.clone());
        }
        self.objects()
    }

    /// Forgets the listing before a use that may change the carrier's objects.
    fn forget_listing(&self) {
        *self.listed() = None;
    }

    /// Runs `work` behind the gate.
    fn guarded<T>(
        &self,
        operation: Operation,
        certificate: Option<String>,
        data: Option<&[u8]>,
        work: impl FnOnce() -> ukey_api::Result<T>,
    ) -> ukey_api::Result<T> {
        if self.gate.needs_examination(self.inner.info()) {
            self.gate.examine(self.inner.as_ref());
        }
        let uid = rustix::process::getuid().as_raw();
        let ctx = UseContext {
            uid,
            login: crate::policy::accounts::login_of(uid),
            client: ClientIdentity::Program { pid: std::process::id(), exe: std::env::current_exe().ok() },
            carrier: self.inner.info().id.clone(),
            info: self.inner.info().clone(),
            certificate,
            operation,
            data_sm3: data.map(|d| hex::encode(HashAlg::Sm3.digest(d))),
        };
        let permit = match self.gate.authorize(&ctx) {
            Ok(p) => p,
            Err(denied) => {
                if let Err(e) = self.gate.record(&ctx, &Outcome::Refused { reason: denied.0.clone() }) {
                    log::error!("the refusal could not be recorded: {e}");
                }
                return Err(Error::Refused(denied.0));
            }
        };
        for notice in permit.notices.iter().filter(|_| self.show_notices) {
            eprintln!("ukey: notice: {}", notice.chars().filter(|c| !c.is_control()).collect::<String>());
        }
        let result = work();
        let outcome = match &result {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::Failed { kind: e.kind().to_string() },
        };
        permit.finish(&outcome).map_err(|d| Error::Refused(d.0))?;
        result
    }

    /// The fingerprint of the certificate paired with key `id`, when there is one.
    fn certificate_of(&self, id: &ObjectId) -> Option<String> {
        let objects = self.recent_objects().ok()?;
        objects
            .certificate_for(id)
            .map(|c| c.info.sha256_fingerprint.clone())
            .or_else(|| objects.key_for(id).and_then(|k| k.certificate.clone()))
    }
}

impl Carrier for GatedCarrier {
    fn info(&self) -> &CarrierInfo {
        self.inner.info()
    }

    fn capabilities(&self) -> ukey_api::Result<Capabilities> {
        self.inner.capabilities()
    }

    fn sign_input_form(&self, mechanism: MechanismKind) -> ukey_api::Result<Option<InputForm>> {
        self.inner.sign_input_form(mechanism)
    }

    fn pin_state(&self) -> ukey_api::Result<PinState> {
        self.inner.pin_state()
    }

    fn objects(&self) -> ukey_api::Result<ObjectList> {
        let list = self.inner.objects()?;
        *self.listed() = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    fn sign(
        &self,
        key: &ObjectId,
        mechanism: &Mechanism,
        input: &SignInput,
        auth: &Credential,
    ) -> ukey_api::Result<Vec<u8>> {
        let cert = self.certificate_of(key);
        self.guarded(Operation::Sign, cert, Some(&input.digest), || self.inner.sign(key, mechanism, input, auth))
    }

    fn generate_key(&self, request: &KeyGenRequest, auth: &Credential) -> ukey_api::Result<KeyObject> {
        self.forget_listing();
        self.guarded(Operation::GenerateKey, None, None, || self.inner.generate_key(request, auth))
    }

    fn import_certificate(
        &self,
        request: &CertificateImport,
        auth: &Credential,
    ) -> ukey_api::Result<CertificateObject> {
        self.forget_listing();
        let fp = ukey_api::CertificateInfo::parse(&request.der).ok().map(|c| c.sha256_fingerprint);
        self.guarded(Operation::ImportCertificate, fp, None, || self.inner.import_certificate(request, auth))
    }

    fn write_data(&self, request: &DataObjectWrite, auth: &Credential) -> ukey_api::Result<DataObjectInfo> {
        self.forget_listing();
        self.guarded(Operation::WriteData, None, None, || self.inner.write_data(request, auth))
    }

    fn read_data(&self, label: &str, auth: Option<&Credential>) -> ukey_api::Result<SecretBytes> {
        match auth {
            // Public data objects (the custody tag among them) need no login: not a use.
            None => self.inner.read_data(label, None),
            Some(a) => self.guarded(Operation::ReadData, None, None, || self.inner.read_data(label, Some(a))),
        }
    }

    fn delete_object(&self, id: &ObjectId, label: Option<&str>, auth: &Credential) -> ukey_api::Result<()> {
        self.forget_listing();
        self.guarded(Operation::DeleteObject, None, None, || self.inner.delete_object(id, label, auth))
    }

    fn verify_pin(&self, role: PinRole, auth: &Credential) -> ukey_api::Result<()> {
        self.guarded(Operation::VerifyPin, None, None, || self.inner.verify_pin(role, auth))
    }

    fn change_pin(&self, role: PinRole, old: &Credential, new: &Pin) -> ukey_api::Result<()> {
        self.guarded(Operation::ChangePin, None, None, || self.inner.change_pin(role, old, new))
    }

    fn unblock_pin(&self, so: &Credential, new_user_pin: &Pin) -> ukey_api::Result<()> {
        self.guarded(Operation::UnblockPin, None, None, || self.inner.unblock_pin(so, new_user_pin))
    }

    fn initialize(&self, request: &InitRequest) -> ukey_api::Result<()> {
        self.forget_listing();
        self.guarded(Operation::Initialize, None, None, || self.inner.initialize(request))
    }
}
