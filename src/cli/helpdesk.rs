//! `ukey helpdesk ...`: the unit's helpdesk registers carriers to holders, suspends and revokes
//! them, unblocks and resets them, and writes custody tags.
//!
//! Every command except `status` and `tag verify` needs the helpdesk role (root, or a member of
//! the policy's `helpdesk_group`) and, when the carrier is present, its SO PIN / PUK (checked on
//! the carrier before anything is written). Every action is recorded in the system audit log: an
//! intent record (synced) before the action, the outcome after — a helpdesk action never happens
//! without its record.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::Serialize;

use ukey_api::crypto::{CarrierKeySigner, SoftwareKey};
use ukey_api::{Carrier, Credential, DataObjectWrite, Error, InitRequest, PinRole, PinState};

use crate::audit::{AuditLog, AuditOptions, Event, Record};
use crate::cli::Run;
use crate::cli::context::{Context, token_name};
use crate::cli::error::{CliError, CliResult};
use crate::cli::output::{Render, sanitize, utc_time};
use crate::policy::accounts::{Account, Role};
use crate::policy::paths::SystemPaths;
use crate::policy::record::{CarrierRef, CustodyRecord, Holder, Right, Status};
use crate::policy::settings::PolicyState;
use crate::policy::store::Registry as CustodyRegistry;
use crate::policy::tag::{Anchors, TAG_APPLICATION, TAG_LABEL, TagCheck, TagPayload, sign_tag};
use crate::registry::Registry;
use crate::resolve::{select_carrier, select_key};

/// `ukey helpdesk ...`
#[derive(Debug, Subcommand)]
pub enum HelpdeskCommand {
    /// Show a carrier's custody: holder, record status, PIN tries, default PIN, certificate
    /// expiry, custody tag.
    Status(TokenArg),
    /// Register a carrier to a holder (its certificates are read from it).
    Bind(BindArgs),
    /// Rewrite a carrier's record (new certificates, accounts, rights) and make it active again.
    Rebind(RebindArgs),
    /// Suspend a carrier's record (it can be re-bound later).
    Suspend(StatusChange),
    /// Revoke a carrier's record for good.
    Revoke(StatusChange),
    /// Unblock the user PIN with the SO PIN / PUK and set a new one.
    Unblock(TokenArg),
    /// Re-initialise a carrier (wipes its keys) and revoke its record.
    Reset(ResetArgs),
    /// Write or verify the signed custody tag on a carrier.
    #[command(subcommand)]
    Tag(TagCommand),
}

/// `--token T`
#[derive(Debug, Args)]
pub struct TokenArg {
    /// The carrier: label, serial, carrier id or PKCS#11 URI.
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
}

/// `ukey helpdesk bind`
#[derive(Debug, Args)]
pub struct BindArgs {
    /// The carrier.
    #[command(flatten)]
    pub token: TokenArg,
    /// The holder's full name.
    #[arg(long, value_name = "NAME")]
    pub holder_name: String,
    /// The holder's identifier in the unit (staff number).
    #[arg(long, value_name = "ID")]
    pub holder_id: String,
    /// The holder's unit or department.
    #[arg(long, value_name = "UNIT")]
    pub unit: String,
    /// OS accounts allowed to use the carrier (repeat, or separate with commas).
    #[arg(long = "account", value_name = "LOGIN", value_delimiter = ',', required = true)]
    pub accounts: Vec<String>,
    /// Use rights: sign, auth, enroll, decrypt (default: sign,auth).
    #[arg(long, value_name = "LIST", value_parser = rights_arg)]
    pub rights: Option<RightsArg>,
    /// Who keeps the carrier (default: the holder).
    #[arg(long, value_name = "NAME")]
    pub custodian: Option<String>,
    /// Web origins allowed (repeatable; default: any origin the holder pairs).
    #[arg(long = "origin", value_name = "ORIGIN")]
    pub origins: Vec<String>,
    /// When the certificate was issued (YYYY-MM-DD; default: its notBefore).
    #[arg(long, value_name = "DATE")]
    pub issued: Option<String>,
}

/// `ukey helpdesk rebind`
#[derive(Debug, Args)]
pub struct RebindArgs {
    /// The carrier.
    #[command(flatten)]
    pub token: TokenArg,
    /// New holder name.
    #[arg(long, value_name = "NAME")]
    pub holder_name: Option<String>,
    /// New holder id.
    #[arg(long, value_name = "ID")]
    pub holder_id: Option<String>,
    /// New unit.
    #[arg(long, value_name = "UNIT")]
    pub unit: Option<String>,
    /// New accounts (replace the old ones).
    #[arg(long = "account", value_name = "LOGIN", value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// New rights.
    #[arg(long, value_name = "LIST", value_parser = rights_arg)]
    pub rights: Option<RightsArg>,
    /// New custodian.
    #[arg(long, value_name = "NAME")]
    pub custodian: Option<String>,
}

/// `ukey helpdesk suspend|revoke`
#[derive(Debug, Args)]
pub struct StatusChange {
    /// The carrier, when it is here (its SO PIN is then required).
    #[arg(long, value_name = "T", conflicts_with = "serial")]
    pub token: Option<String>,
    /// The carrier's serial, when it is not here (lost, stolen).
    #[arg(long, value_name = "SERIAL")]
    pub serial: Option<String>,
    /// Why (recorded in the record and the audit log).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// `ukey helpdesk reset`
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The carrier.
    #[command(flatten)]
    pub token: TokenArg,
    /// The new token label.
    #[arg(long, value_name = "LABEL")]
    pub label: String,
}

/// `ukey helpdesk tag ...`
#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Sign a custody tag from the carrier's record and write it onto the carrier.
    Write(TagWriteArgs),
    /// Check the custody tag on a carrier against the unit's trust anchors.
    Verify(TokenArg),
}

/// `ukey helpdesk tag write`
#[derive(Debug, Args)]
pub struct TagWriteArgs {
    /// The carrier to tag.
    #[command(flatten)]
    pub token: TokenArg,
    /// The unit's signing key, a PKCS#8 PEM file (or use --signer-key).
    #[arg(long, value_name = "FILE", conflicts_with = "signer_key")]
    pub key_file: Option<PathBuf>,
    /// The unit's signing key on a carrier (label, id or URI; its PIN from --pin-file, UKEY_PIN
    /// or a prompt).
    #[arg(long, value_name = "K")]
    pub signer_key: Option<String>,
    /// The carrier holding --signer-key.
    #[arg(long, value_name = "T")]
    pub signer_token: Option<String>,
    /// The signing key's certificate (PEM or DER), one of the unit's trust anchors.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
}

/// `--rights sign,auth`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightsArg(pub Vec<Right>);

fn rights_arg(text: &str) -> Result<RightsArg, String> {
    Right::parse_list(text).map(RightsArg)
}

impl Run for HelpdeskCommand {
    fn run(self, ctx: &Context) -> CliResult {
        let desk = Desk::new();
        match self {
            HelpdeskCommand::Status(t) => status(&desk, ctx, t.token.as_deref()),
            HelpdeskCommand::Bind(a) => bind(&desk, ctx, a),
            HelpdeskCommand::Rebind(a) => rebind(&desk, ctx, a),
            HelpdeskCommand::Suspend(a) => change_status(&desk, ctx, a, Status::Suspended),
            HelpdeskCommand::Revoke(a) => change_status(&desk, ctx, a, Status::Revoked),
            HelpdeskCommand::Unblock(t) => unblock(&desk, ctx, t.token.as_deref()),
            HelpdeskCommand::Reset(a) => reset(&desk, ctx, a),
            HelpdeskCommand::Tag(TagCommand::Write(a)) => tag_write(&desk, ctx, a),
            HelpdeskCommand::Tag(TagCommand::Verify(t)) => tag_verify(&desk, ctx, t.token.as_deref()),
        }
    }
}

/// What every helpdesk command works with.
struct Desk {
    paths: SystemPaths,
    policy: PolicyState,
    registry: CustodyRegistry,
    operator: Account,
}

impl Desk {
    fn new() -> Self {
        let paths = SystemPaths::from_env();
        let policy = PolicyState::load(&paths.policy_file);
        Desk { registry: CustodyRegistry::new(&paths.custody), policy, operator: Account::current(), paths }
    }

    /// Refuses unless this process acts as helpdesk.
    fn require_role(&self) -> CliResult<Role> {
        let group = self.policy.settings().and_then(|s| s.helpdesk_group.clone());
        let role = Role::of_current_process(group.as_deref());
        if role.is_helpdesk() {
            return Ok(role);
        }
        Err(CliError::Refused(match group {
            Some(g) => format!(
                "this is a helpdesk task: account {} is neither root nor in the group {g}",
                self.operator.label()
            ),
            None => format!(
                "this is a helpdesk task: account {} is not root, and the policy names no helpdesk group",
                self.operator.label()
            ),
        }))
    }

    fn audit(&self) -> AuditLog {
        AuditLog::new(&self.paths.audit, AuditOptions { dir_mode: 0o750, file_mode: 0o640, ..AuditOptions::default() })
    }

    /// Checks the carrier's SO PIN / PUK for action `op`; a failed check is put on record too
    /// (someone trying SO PINs is exactly what a reviewer wants to see).
    fn check_so(&self, ctx: &Context, op: &str, carrier: &dyn Carrier) -> CliResult<Credential> {
        check_so(ctx, carrier).or_else(|e| {
            let mut r = self.base_record(op, Some(carrier), &carrier.info().serial, &[]);
            r.result = Some("failed".into());
            r.reason = Some(format!("the SO PIN check failed: {e}"));
            self.audit().append(r, true).map_err(|a| CliError::Refused(a.to_string()))?;
            Err(e)
        })
    }

    /// The record of a helpdesk action, without result.
    fn base_record(&self, op: &str, carrier: Option<&dyn Carrier>, serial: &str, detail: &[(&str, String)]) -> Record {
        let mut base = Record::new(Event::Helpdesk);
        base.uid = Some(self.operator.uid);
        base.account = self.operator.login.clone();
        base.client = Some(format!("ukey helpdesk (pid {})", std::process::id()));
        base.carrier = carrier.map(|c| c.info().id.to_string());
        base.serial = Some(serial.to_string());
        base.model = carrier.map(|c| c.info().model.clone());
        base.op = Some(op.to_string());
        base.policy = Some(self.policy.label().to_string());
        for (k, v) in detail {
            base.detail.insert((*k).to_string(), v.clone());
        }
        base
    }

    /// Runs a helpdesk action between its intent record (synced) and its outcome record.
    fn recorded<T>(
        &self,
        op: &str,
        carrier: Option<&dyn Carrier>,
        serial: &str,
        detail: &[(&str, String)],
        action: impl FnOnce() -> CliResult<T>,
    ) -> CliResult<T> {
        let log = self.audit();
        let base = self.base_record(op, carrier, serial, detail);
        let mut intent = base.clone();
        intent.event = Event::Intent;
        let started = log.append(intent, true).map_err(|e| CliError::Refused(e.to_string()))?;
        let result = action();
        let mut outcome = base;
        outcome.intent = Some(started.seq);
        match &result {
            Ok(_) => outcome.result = Some("done".into()),
            Err(e) => {
                outcome.result = Some("failed".into());
                outcome.reason = Some(e.to_string());
            }
        }
        if let Err(e) = log.append(outcome, true) {
            let done = if result.is_ok() { "the action WAS carried out" } else { "the action failed" };
            return Err(CliError::Refused(format!("{e} ({done}; its intent is on record as seq {})", started.seq)));
        }
        result
    }
}

/// Checks the SO PIN / PUK on the carrier (nothing is written before this succeeds).
fn check_so(ctx: &Context, carrier: &dyn Carrier) -> CliResult<Credential> {
    let so = ctx.current_pin(PinRole::So, carrier)?;
    let cred = Credential::Pin(so);
    carrier.verify_pin(PinRole::So, &cred)?;
    Ok(cred)
}

/// The helpdesk drives carriers directly, not through the holder's gate or agent: its own role
/// check and the system audit log stand in for them.
fn helpdesk_inventory(ctx: &Context) -> crate::registry::Inventory {
    let inventory = Registry::from_config(&ctx.config).inventory();
    for p in &inventory.problems {
        log::warn!("driver {} is unavailable: {}", p.driver, p.message);
    }
    inventory
}

fn carrier_for(ctx: &Context, token: Option<&str>) -> CliResult<Arc<dyn Carrier>> {
    Ok(select_carrier(&helpdesk_inventory(ctx), token)?)
}

fn fingerprints(carrier: &dyn Carrier) -> CliResult<(Vec<String>, Option<i64>)> {
    let objects = carrier.objects()?;
    let fps = objects.certificates.iter().map(|c| c.info.sha256_fingerprint.clone()).collect();
    let not_before = objects.certificates.iter().map(|c| c.info.not_before).min();
    Ok((fps, not_before))
}

/// `ukey helpdesk status` output.
#[derive(Debug, Serialize)]
struct StatusReport {
    carrier: ukey_api::CarrierInfo,
    record: Option<CustodyRecord>,
    record_file: Option<PathBuf>,
    pin: Option<PinState>,
    certificates: Vec<CertView>,
    compliance: crate::policy::compliance::Compliance,
    tag: TagCheck,
    policy: &'static str,
}

#[derive(Debug, Serialize)]
struct CertView {
    subject: String,
    fingerprint: String,
    not_after: String,
    expired: bool,
    registered: bool,
}

impl Render for StatusReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        let c = &self.carrier;
        writeln!(
            out,
            "Carrier:     {} ({} {}, serial {})",
            sanitize(&c.label),
            sanitize(&c.manufacturer),
            sanitize(&c.model),
            sanitize(&c.serial)
        )?;
        writeln!(
            out,
            "Compliance:  {}{}",
            if self.compliance.compliant { "compliant carrier" } else { "NOT a compliant carrier" },
            format_args!(" ({})", self.compliance.reason)
        )?;
        writeln!(out, "Policy:      {}", self.policy)?;
        match &self.record {
            Some(r) => {
                writeln!(out, "Holder:      {} (id {}, unit {})", r.holder.name, r.holder.id, r.holder.unit)?;
                writeln!(
                    out,
                    "Record:      {}{}",
                    r.status.as_str(),
                    r.status_reason.as_deref().map(|s| format!(" ({s})")).unwrap_or_default()
                )?;
                writeln!(out, "Accounts:    {}", r.accounts.join(", "))?;
                writeln!(out, "Rights:      {}", r.rights.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", "))?;
                writeln!(out, "Custodian:   {}", r.custodian)?;
                writeln!(out, "Registered:  {} by {}", r.registered, r.operator)?;
            }
            None => writeln!(out, "Record:      none (this carrier is not registered here)")?,
        }
        if let Some(p) = &self.pin {
            let tries = |s: &ukey_api::PinStatus| match (s.locked, s.retries_left) {
                (true, _) => "LOCKED".to_string(),
                (false, Some(n)) => format!("{n} tries left"),
                (false, None) if s.final_try => "final try".into(),
                (false, None) if s.count_low => "tries running low".into(),
                (false, None) => "tries not reported".into(),
            };
            writeln!(out, "User PIN:    {}", tries(&p.user))?;
            writeln!(out, "SO PIN/PUK:  {}", tries(&p.so))?;
            if p.user.default_pin == Some(true) || p.so.default_pin == Some(true) {
                writeln!(out, "WARNING:     a PIN is still the default value; have the holder change it")?;
            }
        }
        for cert in &self.certificates {
            writeln!(
                out,
                "Certificate: {} expires {}{}{}",
                sanitize(&cert.subject),
                cert.not_after,
                if cert.expired { " (EXPIRED)" } else { "" },
                if self.record.is_some() && !cert.registered { " (not registered)" } else { "" }
            )?;
        }
        match &self.tag {
            TagCheck::Absent => writeln!(out, "Custody tag: none"),
            TagCheck::Valid { payload, anchor } => {
                writeln!(
                    out,
                    "Custody tag: valid, for {} ({}), issued {} by {} (anchor {anchor})",
                    payload.holder.name, payload.holder.unit, payload.issued, payload.operator
                )
            }
            TagCheck::Invalid { reason } => writeln!(out, "Custody tag: INVALID: {reason}"),
        }
    }
}

fn read_tag(desk: &Desk, carrier: &dyn Carrier) -> TagCheck {
    match carrier.read_data(TAG_LABEL, None) {
        Ok(bytes) => Anchors::load(&desk.paths.anchors).check(&bytes, &carrier.info().serial),
        Err(Error::NotFound(_) | Error::NotSupported(_)) => TagCheck::Absent,
        Err(e) => TagCheck::Invalid { reason: format!("it could not be read ({e})") },
    }
}

fn status(desk: &Desk, ctx: &Context, token: Option<&str>) -> CliResult {
    let carrier = carrier_for(ctx, token)?;
    let info = carrier.info().clone();
    let stored = desk.registry.find(&info.serial).map_err(|e| Error::InvalidInput(e.to_string()))?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let objects = carrier.objects()?;
    let certificates = objects
        .certificates
        .iter()
        .map(|c| CertView {
            subject: c.info.subject.clone(),
            fingerprint: c.info.sha256_fingerprint.clone(),
            not_after: utc_time(c.info.not_after),
            expired: c.info.not_after < now,
            registered: stored.as_ref().is_some_and(|s| s.record.certificates.contains(&c.info.sha256_fingerprint)),
        })
        .collect();
    let catalog = crate::policy::compliance::UnitCatalog::load(&desk.paths.catalog());
    ctx.out.emit(&StatusReport {
        compliance: catalog.classify(&info),
        tag: read_tag(desk, carrier.as_ref()),
        pin: carrier.pin_state().ok(),
        record_file: stored.as_ref().map(|s| s.path.clone()),
        record: stored.map(|s| s.record),
        certificates,
        policy: desk.policy.label(),
        carrier: info,
    })
}

/// What a registry change prints.
#[derive(Debug, Serialize)]
struct RecordReport {
    action: &'static str,
    file: PathBuf,
    record: CustodyRecord,
}

impl Render for RecordReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = &self.record;
        writeln!(
            out,
            "{} carrier serial {}: holder {}, accounts {}, rights {}, status {}",
            self.action,
            r.carrier.serial,
            r.holder_label(),
            r.accounts.join(", "),
            r.rights.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", "),
            r.status.as_str()
        )?;
        writeln!(out, "Record: {}", self.file.display())
    }
}

fn bind(desk: &Desk, ctx: &Context, a: BindArgs) -> CliResult {
    desk.require_role()?;
    let carrier = carrier_for(ctx, a.token.token.as_deref())?;
    let info = carrier.info().clone();
    if let Some(existing) = desk.registry.find(&info.serial).map_err(|e| Error::InvalidInput(e.to_string()))? {
        return Err(CliError::Usage(format!(
            "serial {} is already registered to {} (status {}); use `ukey helpdesk rebind` to change it",
            info.serial,
            existing.record.holder_label(),
            existing.record.status.as_str()
        )));
    }
    desk.check_so(ctx, "bind", carrier.as_ref())?;
    let (certificates, not_before) = fingerprints(carrier.as_ref())?;
    let now = crate::audit::time::now_seconds();
    let rights = a.rights.map(|r| r.0).unwrap_or_else(|| vec![Right::Sign, Right::Auth]);
    let record = CustodyRecord {
        status: Status::Active,
        status_reason: None,
        accounts: a.accounts.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        rights,
        origins: a.origins,
        custodian: a.custodian.unwrap_or_else(|| a.holder_name.clone()),
        certificates,
        registered: now.clone(),
        issued: a.issued.unwrap_or_else(|| not_before.map(utc_time).unwrap_or_default()),
        operator: desk.operator.label(),
        updated: now,
        updated_by: desk.operator.label(),
        carrier: CarrierRef {
            serial: info.serial.clone(),
            model: info.model.clone(),
            manufacturer: info.manufacturer.clone(),
        },
        holder: Holder { name: a.holder_name, id: a.holder_id, unit: a.unit },
    };
    record.validate().map_err(CliError::Usage)?;
    let detail = record_detail(&record);
    let file = desk.recorded("bind", Some(carrier.as_ref()), &info.serial, &detail, || {
        desk.registry.write(&record).map_err(|e| CliError::from(Error::InvalidInput(e.to_string())))
    })?;
    ctx.out.emit(&RecordReport { action: "Registered", file, record })
}

fn rebind(desk: &Desk, ctx: &Context, a: RebindArgs) -> CliResult {
    desk.require_role()?;
    let carrier = carrier_for(ctx, a.token.token.as_deref())?;
    let info = carrier.info().clone();
    let Some(stored) = desk.registry.find(&info.serial).map_err(|e| Error::InvalidInput(e.to_string()))? else {
        return Err(CliError::Usage(format!(
            "serial {} is not registered; use `ukey helpdesk bind` to register it",
            info.serial
        )));
    };
    desk.check_so(ctx, "rebind", carrier.as_ref())?;
    let (certificates, _) = fingerprints(carrier.as_ref())?;
    let mut record = stored.record;
    if let Some(n) = a.holder_name {
        record.holder.name = n;
    }
    if let Some(i) = a.holder_id {
        record.holder.id = i;
    }
    if let Some(u) = a.unit {
        record.holder.unit = u;
    }
    if !a.accounts.is_empty() {
        record.accounts = a.accounts;
    }
    if let Some(r) = a.rights {
        record.rights = r.0;
    }
    if let Some(c) = a.custodian {
        record.custodian = c;
    }
    record.certificates = certificates;
    record.carrier.model = info.model.clone();
    record.carrier.manufacturer = info.manufacturer.clone();
    record.status = Status::Active;
    record.status_reason = Some(format!("re-bound by {}", desk.operator.label()));
    record.updated = crate::audit::time::now_seconds();
    record.updated_by = desk.operator.label();
    record.validate().map_err(CliError::Usage)?;
    let detail = record_detail(&record);
    let file = desk.recorded("rebind", Some(carrier.as_ref()), &info.serial, &detail, || {
        desk.registry.write(&record).map_err(|e| CliError::from(Error::InvalidInput(e.to_string())))
    })?;
    ctx.out.emit(&RecordReport { action: "Re-bound", file, record })
}

fn change_status(desk: &Desk, ctx: &Context, a: StatusChange, status: Status) -> CliResult {
    desk.require_role()?;
    let carrier = match (&a.token, &a.serial) {
        (_, Some(_)) => None,
        (t, None) => Some(carrier_for(ctx, t.as_deref())?),
    };
    let serial = match (&carrier, &a.serial) {
        (Some(c), _) => c.info().serial.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => return Err(CliError::Usage("give --token T (carrier present) or --serial S".into())),
    };
    let Some(stored) = desk.registry.find(&serial).map_err(|e| Error::InvalidInput(e.to_string()))? else {
        return Err(CliError::Usage(format!("serial {serial} is not registered")));
    };
    if stored.record.status == Status::Revoked {
        return Err(CliError::Usage(format!("the record of serial {serial} is already revoked")));
    }
    if let Some(c) = &carrier {
        desk.check_so(ctx, if status == Status::Suspended { "suspend" } else { "revoke" }, c.as_ref())?;
    }
    let mut record = stored.record;
    record.status = status;
    record.status_reason = Some(a.reason.clone());
    record.updated = crate::audit::time::now_seconds();
    record.updated_by = desk.operator.label();
    let op = if status == Status::Suspended { "suspend" } else { "revoke" };
    let file = desk.recorded(op, carrier.as_deref(), &serial, &[("reason", a.reason)], || {
        desk.registry.write(&record).map_err(|e| CliError::from(Error::InvalidInput(e.to_string())))
    })?;
    ctx.out.emit(&RecordReport {
        action: if status == Status::Suspended { "Suspended" } else { "Revoked" },
        file,
        record,
    })
}

/// A one-line outcome.
#[derive(Debug, Serialize)]
struct Done {
    message: String,
}

impl Render for Done {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.message)
    }
}

fn unblock(desk: &Desk, ctx: &Context, token: Option<&str>) -> CliResult {
    desk.require_role()?;
    let carrier = carrier_for(ctx, token)?;
    let name = token_name(carrier.as_ref());
    let so = Credential::Pin(ctx.current_pin(PinRole::So, carrier.as_ref())?);
    let new_pin = ctx.pins.new_pin(PinRole::User, &name)?;
    let serial = carrier.info().serial.clone();
    desk.recorded("unblock", Some(carrier.as_ref()), &serial, &[], || Ok(carrier.unblock_pin(&so, &new_pin)?))?;
    let must_change = carrier.pin_state().map(|s| s.user.must_change).unwrap_or(false);
    ctx.out.emit(&Done {
        message: format!(
            "The user PIN of {name} is unblocked and set to the new value{}.",
            if must_change {
                "; the holder must change it at first use"
            } else {
                "; ask the holder to change it (ukey pin change)"
            }
        ),
    })
}

fn reset(desk: &Desk, ctx: &Context, a: ResetArgs) -> CliResult {
    desk.require_role()?;
    let carrier = carrier_for(ctx, a.token.token.as_deref())?;
    let name = token_name(carrier.as_ref());
    let serial = carrier.info().serial.clone();
    let so_pin = ctx.current_pin(PinRole::So, carrier.as_ref())?;
    let user_pin = ctx.pins.new_pin(PinRole::User, &name)?;
    let stored = desk.registry.find(&serial).map_err(|e| Error::InvalidInput(e.to_string()))?;
    let request = InitRequest { so_pin, label: a.label.clone(), user_pin: Some(user_pin) };
    desk.recorded("reset", Some(carrier.as_ref()), &serial, &[("label", a.label.clone())], || {
        carrier.initialize(&request)?;
        if let Some(s) = &stored {
            let mut record = s.record.clone();
            record.status = Status::Revoked;
            record.status_reason = Some("the carrier was reset (its keys wiped)".into());
            record.updated = crate::audit::time::now_seconds();
            record.updated_by = desk.operator.label();
            desk.registry.write(&record).map_err(|e| CliError::from(Error::InvalidInput(e.to_string())))?;
        }
        Ok(())
    })?;
    ctx.out.emit(&Done {
        message: format!(
            "{name} was re-initialised (label {}); its keys are gone{}.",
            a.label,
            if stored.is_some() { " and its custody record is revoked" } else { "" }
        ),
    })
}

fn tag_write(desk: &Desk, ctx: &Context, a: TagWriteArgs) -> CliResult {
    desk.require_role()?;
    let inventory = helpdesk_inventory(ctx);
    let carrier = select_carrier(&inventory, a.token.token.as_deref())?;
    let info = carrier.info().clone();
    let Some(stored) = desk.registry.find(&info.serial).map_err(|e| Error::InvalidInput(e.to_string()))? else {
        return Err(CliError::Usage(format!(
            "serial {} is not registered here; bind it first — the tag is made from its record",
            info.serial
        )));
    };
    let record = stored.record;
    if record.status != Status::Active {
        return Err(CliError::Usage(format!(
            "the record of serial {} is {}; only active records are tagged",
            info.serial,
            record.status.as_str()
        )));
    }
    let cert_der = std::fs::read(&a.cert).map_err(|e| Error::io(format!("reading {}", a.cert.display()), e))?;
    let cert_der = ukey_api::crypto::pem::der_from_pem_or_der(&cert_der, "CERTIFICATE")?;
    let payload = TagPayload {
        unit: desk.policy.settings().and_then(|s| s.unit.clone()).unwrap_or_else(|| record.holder.unit.clone()),
        holder: record.holder.clone(),
        accounts: record.accounts.clone(),
        rights: record.rights.clone(),
        serial: info.serial.clone(),
        model: info.model.clone(),
        certificates: record.certificates.clone(),
        operator: desk.operator.label(),
        issued: crate::audit::time::now_seconds(),
    };
    let tag = match (&a.key_file, &a.signer_key) {
        (Some(path), None) => {
            let pem = std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let key = SoftwareKey::from_pkcs8(&pem)?;
            sign_tag(&payload, &key, &cert_der)?
        }
        (None, Some(k)) => {
            let signer = select_key(&inventory, a.signer_token.as_deref(), k)?;
            let spki = ukey_api::CertificateInfo::parse(&cert_der)?.public_key;
            let pin = Credential::Pin(ctx.current_pin(PinRole::User, signer.carrier.as_ref())?);
            let key = CarrierKeySigner::new(signer.carrier.as_ref(), signer.key.id.clone(), spki, &pin)?;
            sign_tag(&payload, &key, &cert_der)?
        }
        _ => return Err(CliError::Usage("give the unit's key: --key-file FILE or --signer-key K".into())),
    };
    let so = desk.check_so(ctx, "tag-write", carrier.as_ref())?;
    drop(so);
    let user = Credential::Pin(ctx.current_pin(PinRole::User, carrier.as_ref())?);
    let write = DataObjectWrite {
        label: TAG_LABEL.into(),
        application: TAG_APPLICATION.into(),
        id: None,
        value: ukey_api::secret::secret_bytes(tag),
        private: false,
    };
    let fp = ukey_api::CertificateInfo::parse(&cert_der)?.sha256_fingerprint;
    desk.recorded("tag-write", Some(carrier.as_ref()), &info.serial, &[("signer", fp)], || {
        Ok(carrier.write_data(&write, &user)?)
    })?;
    ctx.out.emit(&Done {
        message: format!("Custody tag written on {} for {}.", token_name(carrier.as_ref()), record.holder_label()),
    })
}

fn tag_verify(desk: &Desk, ctx: &Context, token: Option<&str>) -> CliResult {
    let carrier = carrier_for(ctx, token)?;
    let check = read_tag(desk, carrier.as_ref());
    #[derive(Serialize)]
    struct TagReport {
        serial: String,
        tag: TagCheck,
    }
    impl Render for TagReport {
        fn render(&self, out: &mut dyn Write) -> io::Result<()> {
            match &self.tag {
                TagCheck::Absent => writeln!(out, "No custody tag on carrier serial {}.", self.serial),
                TagCheck::Valid { payload, anchor } => writeln!(
                    out,
                    "Valid custody tag on serial {}: {} ({}), accounts {}, issued {} by {}; verified with {anchor}",
                    self.serial,
                    payload.holder.name,
                    payload.holder.unit,
                    payload.accounts.join(", "),
                    payload.issued,
                    payload.operator
                ),
                TagCheck::Invalid { reason } => {
                    writeln!(out, "INVALID custody tag on serial {}: {reason}", self.serial)
                }
            }
        }
    }
    let invalid = matches!(check, TagCheck::Invalid { .. });
    let reason = match &check {
        TagCheck::Invalid { reason } => reason.clone(),
        _ => String::new(),
    };
    ctx.out.emit(&TagReport { serial: carrier.info().serial.clone(), tag: check })?;
    if invalid { Err(CliError::Refused(format!("the custody tag is not valid: {reason}"))) } else { Ok(()) }
}

fn record_detail(r: &CustodyRecord) -> Vec<(&'static str, String)> {
    vec![
        ("holder", r.holder_label()),
        ("holder_id", r.holder.id.clone()),
        ("accounts", r.accounts.join(",")),
        ("rights", r.rights.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(",")),
        ("certificates", r.certificates.join(",")),
    ]
}
