//! The custody gate: the [`Gate`] the agent and the CLI put in front of every carrier use.
//!
//! For each use it reads the policy in force (re-read when `policy.toml` changes), the carrier's
//! custody record (read fresh every time, so a suspension takes effect at once), its custody tag
//! (read from the carrier once a minute when it has no record), and the unit's catalog; decides
//! ([`crate::policy::decide`]); marks the carrier in use by this account
//! ([`crate::policy::inuse`]); and writes an intent record before the carrier is touched. The
//! [`Permit`] it returns writes the outcome record — synced to disk — before the caller answers;
//! if that record cannot be written the caller must not deliver the result.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ukey_api::{Carrier, CarrierId, CarrierInfo, Error};

use crate::agent::gate::{Denied, Gate, Outcome, Permit, Settle, UseContext, log_use};
use crate::audit::forward::Forwarder;
use crate::audit::{AuditLog, AuditOptions, Event, Record};
use crate::policy::accounts::{Account, login_of};
use crate::policy::compliance::UnitCatalog;
use crate::policy::decide::{Decision, Registration, UseFacts, decide};
use crate::policy::inuse::{InUse, InUseError};
use crate::policy::paths::SystemPaths;
use crate::policy::record::CustodyRecord;
use crate::policy::settings::PolicyState;
use crate::policy::store::Registry;
use crate::policy::tag::{Anchors, TAG_LABEL, TagCheck};

/// How long a custody-tag check of a carrier is trusted before it is read again.
const TAG_TTL: Duration = Duration::from_secs(60);

/// The custody gate.
#[derive(Clone)]
pub struct CustodyGate {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CustodyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustodyGate").field("paths", &self.inner.paths).field("audit", &self.inner.audit.dir()).finish()
    }
}

struct Inner {
    paths: SystemPaths,
    registry: Registry,
    audit: AuditLog,
    catalog: UnitCatalog,
    in_use: InUse,
    policy: Mutex<Option<(Stamp, PolicyState)>>,
    index: Mutex<Option<(Stamp, HashMap<String, CustodyRecord>)>>,
    anchors: Mutex<Option<(Stamp, Anchors)>>,
    tags: Mutex<HashMap<CarrierId, (Instant, TagCheck)>>,
    accounts: Mutex<HashMap<u32, Account>>,
}

/// What identifies a version of a file or directory.
type Stamp = Option<(u64, u64, i64, i64, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

impl CustodyGate {
    /// The gate for this machine: system paths from `UKEY_SYSTEM_DIR` (else `/etc/ukey`), the
    /// audit log in `audit_dir`, forwarding and rotation as `policy.toml` says.
    pub fn new(paths: SystemPaths, audit_dir: PathBuf) -> Self {
        let policy = PolicyState::load(&paths.policy_file);
        let mut options = AuditOptions::default();
        if let Some(s) = policy.settings() {
            options.forward = Forwarder::new(s.audit.forward, s.audit.socket.as_deref());
            if let Some(mib) = s.audit.rotate_mib.filter(|m| *m > 0) {
                options.rotate_bytes = mib.saturating_mul(1024 * 1024);
            }
        }
        let inner = Inner {
            registry: Registry::new(&paths.custody),
            audit: AuditLog::new(audit_dir, options),
            catalog: UnitCatalog::load(&paths.catalog()),
            in_use: InUse::new(&paths.in_use),
            policy: Mutex::new(None),
            index: Mutex::new(None),
            anchors: Mutex::new(None),
            tags: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            paths,
        };
        CustodyGate { inner: Arc::new(inner) }
    }

    /// The gate from the environment: `UKEY_SYSTEM_DIR` and the holder's audit directory.
    pub fn from_env() -> Result<Self, Error> {
        let audit = crate::audit::paths::user_audit_dir().ok_or_else(|| {
            Error::InvalidInput(
                "cannot find a place for the audit log: set UKEY_AUDIT_DIR, XDG_STATE_HOME or HOME".into(),
            )
        })?;
        Ok(CustodyGate::new(SystemPaths::from_env(), audit))
    }

    /// The system paths in use.
    pub fn paths(&self) -> &SystemPaths {
        &self.inner.paths
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// The policy in force now.
    pub fn policy(&self) -> PolicyState {
        self.inner.policy()
    }

    /// What the gate would decide for this use, without starting it: nothing is recorded and no
    /// in-use marker is taken (`ukey doctor` reports the current account's standing with it).
    /// [`Gate::authorize`] decides with exactly this.
    pub fn evaluate(&self, ctx: &UseContext) -> Decision {
        let account = self.inner.account(ctx.uid);
        let policy = self.inner.policy();
        self.evaluate_with(ctx, &account, &policy)
    }

    fn evaluate_with(&self, ctx: &UseContext, account: &Account, policy: &PolicyState) -> Decision {
        let inner = &self.inner;
        let record =
            if matches!(policy, PolicyState::Enforced(_)) { inner.registry.find(&ctx.info.serial) } else { Ok(None) };
        let registration = match &record {
            Ok(Some(r)) => Registration::Record(&r.record),
            Ok(None) => Registration::None,
            Err(e) => Registration::Unreadable(format!("the custody registry cannot be read for this key ({e})")),
        };
        let elsewhere = match (policy, &ctx.certificate) {
            (PolicyState::Enforced(_), Some(fp)) => {
                inner.record_with_certificate(fp).filter(|r| r.carrier.serial != ctx.info.serial)
            }
            _ => None,
        };
        let elsewhere_ref = elsewhere.as_ref().map(|r| (r, r.carrier.serial.as_str()));
        let tag = inner.tag(&ctx.carrier);
        let compliance = inner.catalog.classify(&ctx.info);
        let facts = UseFacts {
            account,
            client: &ctx.client,
            operation: ctx.operation,
            carrier: &ctx.info,
            certificate: ctx.certificate.as_deref(),
        };
        decide(policy, &facts, registration, elsewhere_ref, &tag, &compliance)
    }

    /// The unit's catalog as the gate classifies carriers with it.
    pub fn catalog(&self) -> &UnitCatalog {
        &self.inner.catalog
    }

    /// The custody registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }
}

impl Inner {
    fn policy(&self) -> PolicyState {
        let now = stamp(&self.paths.policy_file);
        let mut cache = self.policy.lock().unwrap_or_else(|p| p.into_inner());
        match cache.as_ref() {
            Some((s, state)) if *s == now => state.clone(),
            _ => {
                let state = PolicyState::load(&self.paths.policy_file);
                *cache = Some((now, state.clone()));
                state
            }
        }
    }

    fn account(&self, uid: u32) -> Account {
        let mut cache = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(uid).or_insert_with(|| Account::of_uid(uid)).clone()
    }

    /// The record that registers certificate `fp`, if any.
    fn record_with_certificate(&self, fp: &str) -> Option<CustodyRecord> {
        let now = stamp(&self.paths.custody);
        let mut cache = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if cache.as_ref().is_none_or(|(s, _)| *s != now) {
            let (records, problems) = self.registry.all();
            for p in problems {
                log::warn!("custody registry: {p}");
            }
            let mut map = HashMap::new();
            for r in records {
                for c in &r.record.certificates {
                    map.insert(c.to_ascii_lowercase(), r.record.clone());
                }
            }
            *cache = Some((now, map));
        }
        cache.as_ref().and_then(|(_, m)| m.get(&fp.to_ascii_lowercase()).cloned())
    }

    fn anchors(&self) -> Anchors {
        let now = stamp(&self.paths.anchors);
        let mut cache = self.anchors.lock().unwrap_or_else(|p| p.into_inner());
        match cache.as_ref() {
            Some((s, a)) if *s == now => a.clone(),
            _ => {
                let a = Anchors::load(&self.paths.anchors);
                *cache = Some((now, a.clone()));
                a
            }
        }
    }

    fn tag(&self, id: &CarrierId) -> TagCheck {
        let tags = self.tags.lock().unwrap_or_else(|p| p.into_inner());
        tags.get(id).map(|(_, t)| t.clone()).unwrap_or(TagCheck::Absent)
    }

    /// The audit record of a use, without event and outcome.
    fn base_record(&self, ctx: &UseContext, account: &Account, policy: &PolicyState, holder: Option<String>) -> Record {
        Record {
            uid: Some(ctx.uid),
            account: account.login.clone(),
            client: Some(ctx.client.describe()),
            carrier: Some(ctx.carrier.to_string()),
            serial: Some(ctx.info.serial.clone()),
            model: Some(ctx.info.model.clone()),
            cert: ctx.certificate.clone(),
            op: Some(operation_name(ctx)),
            data_sm3: ctx.data_sm3.clone(),
            policy: Some(policy.label().to_string()),
            holder,
            ..Record::default()
        }
    }
}

/// The operation's name in records (`sign`, `authenticate`, ...).
fn operation_name(ctx: &UseContext) -> String {
    serde_json::to_value(ctx.operation).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The outcome side of a permit.
struct Settler {
    inner: Arc<Inner>,
    ctx: UseContext,
    record: Record,
    intent: u64,
    _hold: Option<crate::policy::inuse::Hold>,
}

impl Settle for Settler {
    fn settle(&mut self, outcome: &Outcome) -> Result<(), Denied> {
        log_use(&self.ctx, outcome);
        let mut r = self.record.clone();
        r.event = Event::Use;
        r.intent = Some(self.intent);
        match outcome {
            Outcome::Done => r.result = Some("done".into()),
            Outcome::Failed { kind } => {
                r.result = Some("failed".into());
                r.reason = Some(kind.clone());
            }
            Outcome::Refused { reason } => {
                r.result = Some("refused".into());
                r.reason = Some(reason.clone());
            }
        }
        self.inner.audit.append(r, true).map(|_| ()).map_err(|e| Denied(e.to_string()))
    }
}

impl Gate for CustodyGate {
    fn needs_examination(&self, info: &CarrierInfo) -> bool {
        let inner = &self.inner;
        if !matches!(inner.policy(), PolicyState::Enforced(_)) {
            return false;
        }
        if let Some((at, _)) = inner.tags.lock().unwrap_or_else(|p| p.into_inner()).get(&info.id)
            && at.elapsed() < TAG_TTL
        {
            return false;
        }
        matches!(inner.registry.find(&info.serial), Ok(None))
    }

    fn examine(&self, carrier: &dyn Carrier) {
        let info = carrier.info();
        let check = match carrier.read_data(TAG_LABEL, None) {
            Ok(bytes) => self.inner.anchors().check(&bytes, &info.serial),
            Err(Error::NotFound(_) | Error::NotSupported(_)) => TagCheck::Absent,
            Err(e) => TagCheck::Invalid { reason: format!("its custody tag could not be read ({e})") },
        };
        log::debug!("custody tag of {}: {check:?}", info.id);
        self.inner.tags.lock().unwrap_or_else(|p| p.into_inner()).insert(info.id.clone(), (Instant::now(), check));
    }

    fn authorize(&self, ctx: &UseContext) -> Result<Permit, Denied> {
        let inner = &self.inner;
        let account = inner.account(ctx.uid);
        let policy = inner.policy();
        let decision = self.evaluate_with(ctx, &account, &policy);
        if let Some(refusal) = decision.refusal {
            log::warn!("refused {} on {} for {}: {refusal}", ctx.operation.describe(), ctx.carrier, account.label());
            return Err(Denied(refusal));
        }
        for n in &decision.notices {
            log::warn!("{n}");
        }
        let binding = decision.binding;
        let hold = match inner.in_use.acquire(&ctx.info.serial, &account, |uid| {
            binding.as_ref().is_none_or(|b| b.allows(login_of(uid).as_deref(), uid))
        }) {
            Ok(h) => Some(h),
            Err(e @ InUseError::HeldBy { .. }) => return Err(Denied(e.to_string())),
            Err(e) if matches!(policy, PolicyState::Enforced(_)) => return Err(Denied(e.to_string())),
            Err(e) => {
                log::debug!("personal mode: no in-use marker ({e})");
                None
            }
        };
        let holder = binding.as_ref().map(|b| b.holder.clone());
        let base = inner.base_record(ctx, &account, &policy, holder);
        let mut intent = base.clone();
        intent.event = Event::Intent;
        if !decision.notices.is_empty() {
            intent.reason = Some(decision.notices.join("; "));
        }
        let appended = inner.audit.append(intent, false).map_err(|e| Denied(e.to_string()))?;
        Ok(Permit::new(
            decision.notices,
            Box::new(Settler {
                inner: Arc::clone(&self.inner),
                ctx: ctx.clone(),
                record: base,
                intent: appended.seq,
                _hold: hold,
            }),
        ))
    }

    fn record(&self, ctx: &UseContext, outcome: &Outcome) -> Result<(), Denied> {
        log_use(ctx, outcome);
        let inner = &self.inner;
        let account = inner.account(ctx.uid);
        let policy = inner.policy();
        let mut r = inner.base_record(ctx, &account, &policy, None);
        match outcome {
            Outcome::Refused { reason } => {
                r.event = Event::Refusal;
                r.result = Some("refused".into());
                r.reason = Some(reason.clone());
            }
            Outcome::Done => r.result = Some("done".into()),
            Outcome::Failed { kind } => {
                r.result = Some("failed".into());
                r.reason = Some(kind.clone());
            }
        }
        inner.audit.append(r, true).map(|_| ()).map_err(|e| Denied(e.to_string()))
    }
}

/// The gate of a CLI process: the custody gate, or — when it cannot be built (no place for the
/// audit log) — a gate that refuses every use saying why (no use without its record).
pub fn cli_gate() -> Arc<dyn Gate> {
    match CustodyGate::from_env() {
        Ok(g) => Arc::new(g),
        Err(e) => Arc::new(RefuseAll(format!("no use without an audit record: {e}"))),
    }
}

/// Refuses every use with one reason.
#[derive(Debug)]
pub struct RefuseAll(pub String);

impl Gate for RefuseAll {
    fn authorize(&self, _ctx: &UseContext) -> Result<Permit, Denied> {
        Err(Denied(self.0.clone()))
    }

    fn record(&self, _ctx: &UseContext, _outcome: &Outcome) -> Result<(), Denied> {
        Err(Denied(self.0.clone()))
    }
}
