//! `ukey compliance report`: each requirement of Article 13 next to the evidence on this machine.
//!
//! Requirements: the certificate is in a compliant carrier; kept by its holder; used by the
//! designated persons only; not lent; and the unit keeps records of custodians, use rights, uses,
//! registration and issuance. Evidence: the policy in force, the custody records, the carriers
//! present and what the catalog says of them, the audit logs (uses, refusals, helpdesk actions)
//! and whether their chains verify.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::audit::read::{Filter, read_dir};
use crate::audit::{Event, verify_dir};
use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, sanitize};
use crate::policy::compliance::UnitCatalog;
use crate::policy::paths::SystemPaths;
use crate::policy::settings::{PolicyState, UnregisteredMode};
use crate::policy::store::Registry;

/// `ukey compliance ...`
#[derive(Debug, clap::Subcommand)]
pub enum ComplianceCommand {
    /// Map each requirement of Article 13 to the evidence on this machine.
    Report(ComplianceArgs),
}

impl Run for ComplianceCommand {
    fn run(self, ctx: &Context) -> CliResult {
        match self {
            ComplianceCommand::Report(a) => a.run(ctx),
        }
    }
}

/// `ukey compliance report`
#[derive(Debug, Args)]
pub struct ComplianceArgs {
    /// The holder audit log to read (default: your own).
    #[arg(long, value_name = "DIR")]
    pub audit_dir: Option<PathBuf>,
}

/// The verdict on one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Enforced here, and the evidence shows no breach.
    Met,
    /// Not enforced, or the evidence shows a breach.
    Gap,
}

/// One requirement.
#[derive(Debug, Clone, Serialize)]
pub struct Requirement {
    /// Short id.
    pub id: &'static str,
    /// The requirement, in words.
    pub text: &'static str,
    /// Met or not.
    pub verdict: Verdict,
    /// What on this machine shows it.
    pub evidence: Vec<String>,
}

/// A carrier present now.
#[derive(Debug, Clone, Serialize)]
struct CarrierLine {
    serial: String,
    model: String,
    compliant: bool,
    reason: String,
    registered_to: Option<String>,
    status: Option<&'static str>,
}

/// One audit log's summary.
#[derive(Debug, Clone, Serialize, Default)]
struct AuditSummary {
    dir: PathBuf,
    readable: bool,
    chain_ok: Option<bool>,
    records: u64,
    errors: usize,
    uses: BTreeMap<String, u64>,
    refusals: u64,
    helpdesk_actions: u64,
    development_uses: u64,
    unregistered_uses: u64,
    interrupted: u64,
    first_error: Option<String>,
}

/// The whole report.
#[derive(Debug, Serialize)]
struct Report {
    policy: &'static str,
    policy_file: PathBuf,
    requirements: Vec<Requirement>,
    carriers: Vec<CarrierLine>,
    records: usize,
    records_by_status: BTreeMap<&'static str, usize>,
    registry_problems: Vec<String>,
    holder_audit: Option<AuditSummary>,
    helpdesk_audit: AuditSummary,
}

impl Render for Report {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "Compliance report (Article 13) — policy: {} ({})", self.policy, self.policy_file.display())?;
        for r in &self.requirements {
            let v = match r.verdict {
                Verdict::Met => "MET",
                Verdict::Gap => "GAP",
            };
            writeln!(out, "\n[{v}] {}", r.text)?;
            for e in &r.evidence {
                writeln!(out, "      - {}", sanitize(e))?;
            }
        }
        Ok(())
    }
}

impl Run for ComplianceArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let paths = SystemPaths::from_env();
        let policy = PolicyState::load(&paths.policy_file);
        let registry = Registry::new(&paths.custody);
        let (records, problems) = registry.all();
        let catalog = UnitCatalog::load(&paths.catalog());
        let inventory = ctx.inventory();
        let carriers: Vec<CarrierLine> = inventory
            .carriers
            .iter()
            .map(|c| {
                let info = c.info();
                let compliance = catalog.classify(info);
                let rec = records.iter().find(|r| r.record.carrier.serial == info.serial);
                CarrierLine {
                    serial: info.serial.clone(),
                    model: format!("{} {}", info.manufacturer.trim(), info.model.trim()),
                    compliant: compliance.compliant,
                    reason: compliance.reason,
                    registered_to: rec.map(|r| r.record.holder_label()),
                    status: rec.map(|r| r.record.status.as_str()),
                }
            })
            .collect();
        let holder_dir = self.audit_dir.or_else(crate::audit::paths::user_audit_dir);
        let holder_audit = holder_dir.map(summarise);
        let helpdesk_audit = summarise(paths.audit.clone());

        let mut by_status: BTreeMap<&'static str, usize> = BTreeMap::new();
        for r in &records {
            *by_status.entry(r.record.status.as_str()).or_default() += 1;
        }
        let settings = policy.settings();
        let enforced = settings.is_some();
        let development = settings.is_some_and(|s| s.development);
        let deny = settings.is_some_and(|s| s.mode == UnregisteredMode::Deny);
        let audits: Vec<&AuditSummary> = holder_audit.iter().chain(std::iter::once(&helpdesk_audit)).collect();
        let dev_uses: u64 = audits.iter().map(|a| a.development_uses).sum();
        let unregistered_uses: u64 = audits.iter().map(|a| a.unregistered_uses).sum();
        let refusals: u64 = audits.iter().map(|a| a.refusals).sum();
        let non_compliant_present: Vec<&CarrierLine> = carriers.iter().filter(|c| !c.compliant).collect();
        let policy_line = match &policy {
            PolicyState::Personal => {
                "no custody policy is installed (personal mode): nothing is enforced on this machine".to_string()
            }
            PolicyState::Broken(why) => why.clone(),
            PolicyState::Enforced(s) => format!(
                "custody policy installed: unregistered carriers {}, development mode {}",
                s.mode.as_str(),
                if s.development { "ON" } else { "off" }
            ),
        };

        let mut reqs = Vec::new();
        let mut ev = vec![policy_line.clone()];
        ev.push(if development {
            "development mode is ON: non-compliant carriers (software tokens) are allowed".into()
        } else if enforced {
            "non-compliant carriers are refused on every use (agent and CLI)".into()
        } else {
            "non-compliant carriers are not refused".into()
        });
        for c in &non_compliant_present {
            ev.push(format!("present and NOT compliant: {} serial {} ({})", c.model, c.serial, c.reason));
        }
        for c in carriers.iter().filter(|c| c.compliant) {
            ev.push(format!("present and compliant: {} serial {}", c.model, c.serial));
        }
        if dev_uses > 0 {
            ev.push(format!("{dev_uses} uses recorded under development mode"));
        }
        reqs.push(Requirement {
            id: "compliant-carrier",
            text: "Certificates are stored in compliant carriers",
            verdict: if enforced && !development && dev_uses == 0 { Verdict::Met } else { Verdict::Gap },
            evidence: ev,
        });

        let with_custodian = records.iter().filter(|r| !r.record.custodian.trim().is_empty()).count();
        reqs.push(Requirement {
            id: "kept-by-holder",
            text: "Each carrier is kept by its holder (a named custodian)",
            verdict: if enforced && with_custodian == records.len() && !records.is_empty() {
                Verdict::Met
            } else {
                Verdict::Gap
            },
            evidence: vec![
                format!("{} custody records, {with_custodian} with a named custodian", records.len()),
                format!(
                    "records by status: {}",
                    by_status.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
                ),
            ],
        });

        let mut ev = vec![policy_line.clone()];
        ev.push(format!(
            "unregistered carriers: {}",
            match settings.map(|s| s.mode) {
                Some(UnregisteredMode::Deny) => "refused",
                Some(UnregisteredMode::Warn) => "allowed with a warning",
                None => "allowed (no policy)",
            }
        ));
        ev.push(format!("{refusals} refusals recorded (uses by accounts or clients outside a carrier's binding, and other policy refusals)"));
        if unregistered_uses > 0 {
            ev.push(format!("{unregistered_uses} uses of unregistered carriers recorded"));
        }
        let unregistered_present = carriers.iter().filter(|c| c.registered_to.is_none()).count();
        if unregistered_present > 0 {
            ev.push(format!("{unregistered_present} carriers present are not registered"));
        }
        reqs.push(Requirement {
            id: "designated-persons",
            text: "Certificates are used only by the designated persons (the accounts bound to each carrier)",
            verdict: if enforced && deny && unregistered_uses == 0 { Verdict::Met } else { Verdict::Gap },
            evidence: ev,
        });

        reqs.push(Requirement {
            id: "not-lent",
            text: "Carriers are not lent (no other account may use them, not even at the same time)",
            verdict: if enforced && deny { Verdict::Met } else { Verdict::Gap },
            evidence: vec![
                "every use checks the calling OS account against the record (Unix socket: SO_PEERCRED; WebSocket: /proc/net/tcp owner; CLI: own uid)".into(),
                format!("cross-account in-use markers in {}", paths.in_use.display()),
                "a certificate registered to another carrier is refused (copied keys)".into(),
                format!("custody tags are checked against the anchors in {}", paths.anchors.display()),
            ],
        });

        let complete = records
            .iter()
            .filter(|r| {
                let x = &r.record;
                !x.custodian.is_empty() && !x.rights.is_empty() && !x.registered.is_empty() && !x.operator.is_empty()
            })
            .count();
        let mut ev = vec![
            format!(
                "{} custody records in {} ({complete} complete: custodian, rights, registration, operator)",
                records.len(),
                paths.custody.display()
            ),
            format!("{} records have an issuance date", records.iter().filter(|r| !r.record.issued.is_empty()).count()),
        ];
        for p in &problems {
            ev.push(format!("unreadable record: {p}"));
        }
        let mut chains_ok = true;
        for a in &audits {
            let status = match (a.readable, a.chain_ok) {
                (false, _) => "not readable here".to_string(),
                (true, Some(true)) => "chain verifies".to_string(),
                (true, Some(false)) => {
                    chains_ok = false;
                    format!("chain BROKEN ({} errors; first: {})", a.errors, a.first_error.clone().unwrap_or_default())
                }
                (true, None) => "empty".to_string(),
            };
            let uses: u64 = a.uses.values().sum();
            ev.push(format!(
                "audit log {}: {} records, {uses} uses, {} refusals, {} helpdesk actions; {status}",
                a.dir.display(),
                a.records,
                a.refusals,
                a.helpdesk_actions
            ));
        }
        reqs.push(Requirement {
            id: "records",
            text: "The unit keeps records of custodians, use rights, uses, registration and issuance",
            verdict: if enforced && complete == records.len() && !records.is_empty() && problems.is_empty() && chains_ok
            {
                Verdict::Met
            } else {
                Verdict::Gap
            },
            evidence: ev,
        });

        ctx.out.emit(&Report {
            policy: policy.label(),
            policy_file: paths.policy_file.clone(),
            requirements: reqs,
            carriers,
            records: records.len(),
            records_by_status: by_status,
            registry_problems: problems.iter().map(ToString::to_string).collect(),
            holder_audit,
            helpdesk_audit,
        })
    }
}

/// Reads and verifies one audit log.
fn summarise(dir: PathBuf) -> AuditSummary {
    let mut s = AuditSummary { dir: dir.clone(), ..AuditSummary::default() };
    if !dir.is_dir() {
        return s;
    }
    let Ok(records) = read_dir(&dir, &Filter::default(), None) else { return s };
    s.readable = true;
    s.records = records.len() as u64;
    for r in &records {
        let rec = &r.record;
        match rec.event {
            Event::Use => {
                *s.uses.entry(rec.op.clone().unwrap_or_default()).or_default() += 1;
                if rec.policy.as_deref() == Some("development") {
                    s.development_uses += 1;
                }
                if rec.policy.as_deref() != Some("personal") && rec.holder.is_none() {
                    s.unregistered_uses += 1;
                }
            }
            Event::Refusal => s.refusals += 1,
            Event::Helpdesk => s.helpdesk_actions += 1,
            _ => {}
        }
    }
    if let Ok(report) = verify_dir(&dir, &[]) {
        s.chain_ok = (report.records > 0).then(|| report.ok());
        s.errors = report.errors();
        s.interrupted = report.interrupted;
        s.first_error = report
            .findings
            .iter()
            .find(|f| f.severity == crate::audit::verify::Severity::Error)
            .map(|f| f.message.clone());
    }
    s
}
