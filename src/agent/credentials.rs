//! One carrier use, start to finish: resolve the object a handle names, ask the gate, get the
//! credential (a PIN the local client supplied, the optional cache, or the holder through
//! pinentry — re-asking after a wrong PIN with the tries left), run the operation in the
//! carrier's queue, and tell the gate the outcome.

use std::sync::Arc;

use zeroize::Zeroizing;

use ukey_api::crypto::encoding::base64_decode;
use ukey_api::{Carrier, CertificateObject, Credential, Error, HashAlg, KeyObject, ObjectList, Pin, PinRole};

use crate::agent::carriers::CarrierSlot;
use crate::agent::consent::Purpose;
use crate::agent::error::{AgentError, AgentResult};
use crate::agent::gate::{Operation, Outcome, UseContext};
use crate::agent::gate_io::{self, GatedRun, PermitGuard};
use crate::agent::pincache::CacheKey;
use crate::agent::service::{Service, Session};
use crate::agent::views::parse_handle;

/// How many times the holder is asked again after a wrong PIN before the error is returned.
const PIN_ATTEMPTS: usize = 3;

/// A key (and its certificate, if any) that a handle names.
pub struct Target {
    /// The carrier.
    pub slot: Arc<CarrierSlot>,
    /// The private key.
    pub key: KeyObject,
    /// Its certificate, when stored.
    pub cert: Option<CertificateObject>,
    /// Public key, DER SPKI (from the key or the certificate).
    pub spki: Vec<u8>,
}

/// What one use is, for the dialog and the gate.
pub struct Use<'a> {
    /// The operation.
    pub operation: Operation,
    /// The carrier.
    pub slot: &'a Arc<CarrierSlot>,
    /// Certificate subject and SHA-256 fingerprint, when a certificate is involved.
    pub cert: Option<&'a CertificateObject>,
    /// The key, when one is used (for the cache and `always_authenticate`).
    pub key: Option<&'a KeyObject>,
    /// SM3 hex of the data signed.
    pub data_sm3: Option<String>,
    /// Extra line for the dialog (e.g. "for https://bank.example").
    pub detail: Option<String>,
    /// Which PIN.
    pub role: PinRole,
    /// A PIN the local client supplied (Unix socket only).
    pub supplied: Option<Pin>,
    /// The local client has its user enter the PIN on the reader's PIN pad (no dialog here).
    pub protected_path: bool,
}

/// Decodes base64 from a parameter, naming the parameter in the error.
pub fn b64_param(name: &str, text: &str) -> AgentResult<Vec<u8>> {
    base64_decode(text).map_err(|e| AgentError::InvalidParams(format!("`{name}`: {e}")))
}

/// A PIN supplied as a parameter (already refused for pages before this point).
pub fn supplied_pin(text: Option<Zeroizing<String>>) -> AgentResult<Option<Pin>> {
    match text {
        None => Ok(None),
        Some(mut t) => Ok(Some(Pin::new(std::mem::take(&mut *t))?)),
    }
}

/// SM3 of data, hex: what the audit records and the dialog shows a short form of.
pub fn sm3_hex(data: &[u8]) -> String {
    hex::encode(HashAlg::Sm3.digest(data))
}

impl Service {
    /// Resolves a handle to its key (and certificate). With `page_needs_cert`, a page may only
    /// use a key that has a certificate (signing and login; enrolment works on fresh keys).
    pub(crate) async fn target(&self, session: &Session, handle: &str, page_needs_cert: bool) -> AgentResult<Target> {
        let (carrier, id) = parse_handle(handle).map_err(AgentError::InvalidParams)?;
        let slot = self.carriers.get(&carrier)?;
        let objects: Arc<ObjectList> = slot.objects().await?;
        let key = objects.key_for(&id).cloned().ok_or_else(|| {
            Error::NotFound(format!("no private key with id {} on {}", id.to_hex(), slot.info().display_name()))
        })?;
        let cert = objects.certificate_for(&id).cloned();
        if page_needs_cert && session.is_page() && cert.is_none() {
            return Err(Error::NotFound(format!(
                "no certificate with id {} for this key; web pages sign with certificates",
                id.to_hex()
            ))
            .into());
        }
        let spki = match (&key.public_key, &cert) {
            (Some(pk), _) => pk.clone(),
            (None, Some(c)) => c.info.public_key.clone(),
            (None, None) => {
                return Err(
                    Error::NotSupported(format!("the public key of key {} is not readable", id.to_hex())).into()
                );
            }
        };
        Ok(Target { slot, key, cert, spki })
    }

    /// The gate's view of a use.
    pub(crate) fn use_context(&self, session: &Session, u: &Use<'_>) -> UseContext {
        UseContext {
            uid: self.uid,
            login: self.login.clone(),
            client: session.client.clone(),
            carrier: u.slot.info().id.clone(),
            info: u.slot.info().clone(),
            certificate: u
                .cert
                .map(|c| c.info.sha256_fingerprint.clone())
                .or_else(|| u.key.and_then(|k| k.certificate.clone())),
            operation: u.operation,
            data_sm3: u.data_sm3.clone(),
        }
    }

    /// Runs `op` on the carrier with the right credential, asking the gate first and telling it
    /// the outcome after.
    ///
    /// When the credential is at hand without asking the holder (a PIN the local client
    /// supplied, a cached PIN, the reader's PIN pad) the whole use — gate, carrier, outcome record
    /// — is one transaction in the carrier's queue on one blocking-pool thread
    /// ([`gate_io::run_gated`]). Otherwise the permit is taken first and held while the holder
    /// is asked (the dialog must not hold the carrier's queue).
    pub(crate) async fn with_credential<T, F>(&self, session: &Session, u: Use<'_>, op: F) -> AgentResult<T>
    where
        T: Send + 'static,
        F: Fn(&dyn Carrier, &Credential) -> Result<T, Error> + Send + Sync + Clone + 'static,
    {
        let ctx = self.use_context(session, &u);
        self.examine_if_needed(u.slot).await;
        if let Some((cred, cache_key)) = self.credential_at_hand(session, &u) {
            let (gate, use_ctx, run_op) = (Arc::clone(&self.gate), ctx.clone(), op.clone());
            let from_cache = cache_key.is_some();
            let ran = u
                .slot
                .run(move |c| {
                    let reopen = |e: &Error| from_cache && matches!(e, Error::WrongPin { .. });
                    Ok(gate_io::run_gated(gate.as_ref(), &use_ctx, || run_op(c, &cred), reopen))
                })
                .await;
            return match ran {
                Ok(GatedRun::Settled(result)) => Ok(result?),
                Ok(GatedRun::Refused(denied)) => Err(AgentError::PolicyDenied(denied.0)),
                Ok(GatedRun::Unrecorded(denied)) => Err(withheld(&denied)),
                Ok(GatedRun::Reopened(permit, _wrong_cached_pin)) => {
                    // The cached PIN stopped working (changed elsewhere): forget it and ask the
                    // holder, still under this use's permit.
                    if let Some(key) = &cache_key {
                        self.consent.cache.forget(key);
                    }
                    let result = self.credential_loop(session, &u, op).await;
                    settle(permit, result).await
                }
                Err(queued) => {
                    // The use never reached the gate (queue full or timed out, carrier removed):
                    // still on record, as the separate permit used to record it.
                    let outcome = Outcome::Failed { kind: queued.kind().to_string() };
                    if let Err(e) = gate_io::record(&self.gate, &ctx, outcome).await {
                        log::error!("a use that failed in the carrier's queue could not be put on record: {e}");
                    }
                    Err(queued.into())
                }
            };
        }
        let permit = self.permit(&ctx, u.slot).await?;
        let result = self.credential_loop(session, &u, op).await;
        settle(permit, result).await
    }

    /// The credential of a use when no one has to be asked for it: the PIN the local client
    /// supplied, the reader's PIN pad, or one use of a cached PIN (with its cache key, so a PIN
    /// the carrier rejects is forgotten). `None`: the holder must be asked.
    fn credential_at_hand(&self, session: &Session, u: &Use<'_>) -> Option<(Credential, Option<CacheKey>)> {
        if u.protected_path {
            return Some((Credential::ProtectedPath, None));
        }
        if let Some(pin) = &u.supplied {
            return Some((Credential::Pin(pin.clone()), None));
        }
        let key = cache_key(session, u)?;
        let pin = self.consent.cache.take(&key)?;
        Some((Credential::Pin(pin), Some(key)))
    }

    /// Lets the gate read what it needs from the carrier (its custody tag) when it says so.
    async fn examine_if_needed(&self, slot: &Arc<CarrierSlot>) {
        if self.gate.needs_examination(slot.info()) {
            let gate = Arc::clone(&self.gate);
            if let Err(e) = slot
                .run(move |c| {
                    gate.examine(c);
                    Ok(())
                })
                .await
            {
                log::debug!("the custody tag of {} was not read: {e}", slot.info().id);
            }
        }
    }

    /// Asks the gate for a permit, first letting it read what it needs from the carrier (its
    /// custody tag) when it says so. A refusal is put on record and becomes `PolicyDenied`.
    pub(crate) async fn permit(&self, ctx: &UseContext, slot: &Arc<CarrierSlot>) -> AgentResult<PermitGuard> {
        self.examine_if_needed(slot).await;
        match gate_io::authorize(&self.gate, ctx).await {
            Ok(permit) => {
                for notice in permit.notices() {
                    log::warn!("{} on {}: {notice}", ctx.operation.describe(), ctx.carrier);
                }
                Ok(permit)
            }
            Err(denied) => Err(AgentError::PolicyDenied(denied.0)),
        }
    }

    /// Runs `op` with the cached PIN for `key`, if there is one. `None` when there is none, or
    /// when it no longer works (then it is forgotten and the holder must be asked).
    async fn with_cached_pin<T, F>(&self, slot: &CarrierSlot, key: &CacheKey, op: &F) -> Option<AgentResult<T>>
    where
        T: Send + 'static,
        F: Fn(&dyn Carrier, &Credential) -> Result<T, Error> + Send + Sync + Clone + 'static,
    {
        let cred = Credential::Pin(self.consent.cache.take(key)?);
        let op = op.clone();
        match slot.run(move |c| op(c, &cred)).await {
            Err(Error::WrongPin { .. }) => {
                self.consent.cache.forget(key);
                None
            }
            other => Some(other.map_err(Into::into)),
        }
    }

    /// The credential part of [`Service::with_credential`], for operations that ask the gate
    /// themselves (PIN administration spans several carrier calls).
    pub(crate) async fn credential_loop<T, F>(&self, session: &Session, u: &Use<'_>, op: F) -> AgentResult<T>
    where
        T: Send + 'static,
        F: Fn(&dyn Carrier, &Credential) -> Result<T, Error> + Send + Sync + Clone + 'static,
    {
        let slot = u.slot;
        if u.protected_path {
            let op = op.clone();
            return Ok(slot.run(move |c| op(c, &Credential::ProtectedPath)).await?);
        }
        if let Some(pin) = &u.supplied {
            let cred = Credential::Pin(pin.clone());
            let op = op.clone();
            return Ok(slot.run(move |c| op(c, &cred)).await?);
        }
        let cache_key = cache_key(session, u);
        if let Some(key) = &cache_key
            && let Some(result) = self.with_cached_pin(slot, key, &op).await
        {
            return result;
        }
        // A cache miss fills the cache under one lock: requests that queued behind the holder's
        // dialog for this key then use the PIN just given instead of opening one dialog each.
        let _filling = match &cache_key {
            Some(_) if self.consent.cache.enabled() => Some(match self.consent.cache_fill.try_lock() {
                Ok(guard) => guard,
                Err(_) => {
                    log::debug!("a PIN dialog is open; this request waits for it and may use the PIN it gives");
                    self.consent.cache_fill.lock().await
                }
            }),
            _ => None,
        };
        if let Some(key) = &cache_key
            && _filling.is_some()
            && let Some(result) = self.with_cached_pin(slot, key, &op).await
        {
            return result;
        }
        let state = slot.run(|c| c.pin_state()).await?;
        let status = match u.role {
            PinRole::User => &state.user,
            PinRole::So => &state.so,
        };
        if status.locked {
            return Err(Error::PinLocked { role: u.role }.into());
        }
        let purpose = Purpose {
            client: &session.client,
            operation: u.operation,
            carrier: slot.info(),
            subject: u.cert.map(|c| c.info.subject.as_str()),
            data_sm3: u.data_sm3.as_deref(),
            detail: u.detail.as_deref(),
            role: u.role,
        };
        if state.protected_path {
            if !self.consent.confirm(&purpose, slot.removed()).await? {
                return Err(Error::Cancelled.into());
            }
            let op = op.clone();
            return Ok(slot.run(move |c| op(c, &Credential::ProtectedPath)).await?);
        }
        let mut error = match (status.retries_left, status.max_retries) {
            (Some(left), Some(max)) if left < max => {
                Some(tries_left_text("A previous PIN entry was wrong.", Some(left)))
            }
            _ => None,
        };
        let mut last = Error::Cancelled;
        for _ in 0..PIN_ATTEMPTS {
            let pin = self.consent.pin(&purpose, error.take(), slot.removed()).await?;
            if slot.is_removed() {
                return Err(Error::TokenRemoved.into());
            }
            let cred = Credential::Pin(pin.clone());
            let op2 = op.clone();
            match slot.run(move |c| op2(c, &cred)).await {
                Ok(v) => {
                    if let Some(key) = cache_key {
                        self.consent.cache.store(key, &pin);
                    }
                    return Ok(v);
                }
                Err(Error::WrongPin { role, retries_left, detail }) => {
                    if retries_left == Some(0) {
                        return Err(Error::PinLocked { role }.into());
                    }
                    error = Some(tries_left_text("Wrong PIN.", retries_left));
                    last = Error::WrongPin { role, retries_left, detail };
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.into())
    }
}

/// The PIN-cache entry a use may draw on: user-PIN uses of keys that do not demand the PIN for
/// every use, per client, carrier and key.
fn cache_key(session: &Session, u: &Use<'_>) -> Option<CacheKey> {
    u.key.filter(|k| !k.always_authenticate && u.role == PinRole::User).map(|k| CacheKey {
        client: session.client.describe(),
        carrier: u.slot.info().id.clone(),
        key: k.id.clone(),
    })
}

/// The refusal a result becomes when its outcome cannot be put on record.
fn withheld(denied: &crate::agent::gate::Denied) -> AgentError {
    AgentError::PolicyDenied(format!("the use could not be put on record, so its result is withheld: {denied}"))
}

/// Records the outcome of a permitted use (on the blocking pool: [`gate_io`]). A result whose
/// outcome cannot be put on record is withheld (fail closed): the client gets `PolicyDenied`
/// saying why, never the signature.
pub(crate) async fn settle<T>(permit: PermitGuard, result: AgentResult<T>) -> AgentResult<T> {
    let outcome = match &result {
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::Failed { kind: e.kind().to_string() },
    };
    gate_io::finish(permit, outcome).await.map_err(|d| withheld(&d))?;
    result
}

/// "Wrong PIN. 2 tries left before the PIN locks."
fn tries_left_text(lead: &str, left: Option<u32>) -> String {
    match left {
        Some(1) => format!("{lead} 1 try left before the PIN locks — be careful."),
        Some(n) => format!("{lead} {n} tries left before the PIN locks."),
        None => format!("{lead} The carrier does not say how many tries are left."),
    }
}
