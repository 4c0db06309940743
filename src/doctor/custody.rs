//! The custody policy as it applies to the person running the doctor: the policy file (absent:
//! personal mode; unreadable or invalid: every use refused), the registry's records, each carrier
//! present judged by the same decision the agent and the CLI make on a use (registered to whom,
//! suspended or revoked, unregistered under `deny` or `warn`, what this account may do with it),
//! and the holder's audit log (writable, and its chain verifies) — without which every use is
//! refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ukey_api::Carrier;

use super::{Environment, Finding};
use crate::agent::gate::{ClientIdentity, Gate, Operation, UseContext};
use crate::audit::verify::{Severity, verify_dir};
use crate::policy::accounts::Account;
use crate::policy::gate::CustodyGate;
use crate::policy::paths::{DEFAULT_SYSTEM_DIR, SystemPaths};
use crate::policy::record::Status;
use crate::policy::settings::{PolicyState, UnregisteredMode};

/// Check id.
pub const ID: &str = "custody";

const ASK_HELPDESK: &str = "ask your helpdesk";

/// Reports the custody status.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let paths = if env.system_dir == Path::new(DEFAULT_SYSTEM_DIR) {
        SystemPaths::standard()
    } else {
        SystemPaths::under(&env.system_dir)
    };
    let gate = CustodyGate::new(paths.clone(), env.audit_dir.clone().unwrap_or_default());
    let mut out = Vec::new();
    let policy = gate.policy();
    match &policy {
        PolicyState::Personal => out.push(Finding::ok(
            ID,
            format!(
                "no custody policy installed ({} does not exist): ukey runs in personal mode, where each carrier \
                 may be used by whoever holds it, and every use says so",
                paths.policy_file.display()
            ),
        )),
        PolicyState::Broken(reason) => out.push(Finding::fail(
            ID,
            reason.clone(),
            format!(
                "{ASK_HELPDESK} to correct {} (its keys: mode, development, helpdesk_group, unit and an [audit] \
                 table; see docs/custody.md); a policy that cannot be read never switches enforcement off",
                paths.policy_file.display()
            ),
        )),
        PolicyState::Enforced(s) => {
            let unregistered = match s.mode {
                UnregisteredMode::Deny => "unregistered carriers are refused",
                UnregisteredMode::Warn => "unregistered carriers are allowed with a warning",
            };
            let unit = s.unit.as_deref().map(|u| format!(" of {u}")).unwrap_or_default();
            out.push(Finding::ok(
                ID,
                format!("the custody policy{unit} is in force ({}): {unregistered}", paths.policy_file.display()),
            ));
            if s.development {
                out.push(Finding::warn(
                    ID,
                    "development mode is on: carriers that are not compliant (the software token) may be used",
                    format!("on a production machine set `development = false` in {}", paths.policy_file.display()),
                ));
            }
            out.extend(registry_findings(&gate));
        }
    }
    out.extend(carrier_findings(env, &gate, &policy));
    out.push(audit_finding(env.audit_dir.as_deref()));
    out
}

/// A summary of the records, and a failure for each record file that cannot be read.
fn registry_findings(gate: &CustodyGate) -> Vec<Finding> {
    let (records, problems) = gate.registry().all();
    let mut out: Vec<Finding> = problems
        .into_iter()
        .map(|p| {
            Finding::fail(
                ID,
                format!("a custody record cannot be used: {p}"),
                format!("{ASK_HELPDESK} to repair it; the carrier it describes is refused until then"),
            )
        })
        .collect();
    let count = |st: Status| records.iter().filter(|r| r.record.status == st).count();
    out.push(Finding::ok(
        ID,
        format!(
            "{} custody record(s) in {}: {} active, {} suspended, {} revoked",
            records.len(),
            gate.registry().dir().display(),
            count(Status::Active),
            count(Status::Suspended),
            count(Status::Revoked)
        ),
    ));
    out
}

/// Each carrier present, judged for this account as a use would be.
fn carrier_findings(env: &Environment<'_>, gate: &CustodyGate, policy: &PolicyState) -> Vec<Finding> {
    let inventory = (env.carriers)();
    if matches!(policy, PolicyState::Personal) {
        if inventory.carriers.is_empty() {
            return Vec::new();
        }
        return vec![Finding::ok(
            ID,
            format!(
                "{} carrier(s) present; in personal mode anyone holding them may use them",
                inventory.carriers.len()
            ),
        )];
    }
    let account = Account::current();
    inventory.carriers.iter().map(|c| judge(gate, c, &account, matches!(policy, PolicyState::Broken(_)))).collect()
}

/// What this account may do with one carrier, and if nothing, why and what to do.
fn judge(gate: &CustodyGate, carrier: &Arc<dyn Carrier>, account: &Account, broken: bool) -> Finding {
    let info = carrier.info();
    let name = format!("{} (serial {})", info.label, info.serial);
    if gate.needs_examination(info) {
        gate.examine(carrier.as_ref());
    }
    let ctx = |operation| UseContext {
        uid: account.uid,
        login: account.login.clone(),
        client: ClientIdentity::Program { pid: std::process::id(), exe: None },
        carrier: info.id.clone(),
        info: info.clone(),
        certificate: None,
        operation,
        data_sm3: None,
    };
    let sign = gate.evaluate(&ctx(Operation::Sign));
    let who = account.label();
    if let Some(refusal) = sign.refusal {
        let record = gate.registry().find(&info.serial).ok().flatten().map(|r| r.record);
        let fix = if broken {
            "the policy file must be fixed first (see above)".to_string()
        } else {
            match &record {
                Some(r) if r.status != Status::Active => format!(
                    "only the helpdesk can change this; `ukey helpdesk status --token {}` shows the record",
                    info.serial
                ),
                Some(r) if !r.allows_account(account.login.as_deref(), account.uid) => format!(
                    "this carrier is not yours to use; if it should be, {ASK_HELPDESK} to add your account \
                     (`ukey helpdesk rebind --token {} --account {who}`)",
                    info.serial
                ),
                Some(_) => format!("{ASK_HELPDESK}; `ukey helpdesk status --token {}` shows the record", info.serial),
                None => format!(
                    "{ASK_HELPDESK} to register it: `ukey helpdesk bind --token {} --holder-name NAME --holder-id ID \
                     --unit UNIT --account {who} --rights sign,auth`",
                    info.serial
                ),
            }
        };
        return Finding::fail(ID, format!("{name}: you ({who}) may not use it: {refusal}"), fix).about(name);
    }
    let mut may = Vec::new();
    let mut may_not = Vec::new();
    for op in [Operation::Sign, Operation::Authenticate, Operation::GenerateKey] {
        let allowed = if op == Operation::Sign { true } else { gate.evaluate(&ctx(op)).refusal.is_none() };
        let list = if allowed { &mut may } else { &mut may_not };
        list.push(op.describe());
    }
    let holder = sign.binding.as_ref().map(|b| format!("registered to {}; ", b.holder)).unwrap_or_default();
    let mut message = format!("{name}: {holder}you ({who}) may {}", may.join(", "));
    if !may_not.is_empty() {
        message.push_str(&format!("; not {}", may_not.join(", ")));
    }
    if sign.binding.is_none() {
        let fix = format!(
            "{ASK_HELPDESK} to register it (`ukey helpdesk bind --token {} ...`) before the policy refuses \
             unregistered carriers",
            info.serial
        );
        let notices = sign.notices.join("; ");
        return Finding::warn(ID, format!("{message} ({notices})"), fix).about(name);
    }
    Finding::ok(ID, message).about(name)
}

/// The holder's audit log: a use that cannot be recorded is refused, so it must be writable, and
/// its chain should verify.
fn audit_finding(dir: Option<&Path>) -> Finding {
    let Some(dir) = dir else {
        return Finding::fail(
            ID,
            "there is no place for your audit log (none of UKEY_AUDIT_DIR, XDG_STATE_HOME or HOME is set): every \
             carrier use is refused, since none could be recorded",
            "set HOME (your login does), or UKEY_AUDIT_DIR to a directory of yours",
        );
    };
    let shown = dir.display();
    if !dir.exists() {
        return match nearest_existing(dir) {
            Some(parent) if writable(&parent) => Finding::ok(
                ID,
                format!(
                    "no audit log yet; it is created at {shown} at the first use ({} is writable)",
                    parent.display()
                ),
            ),
            Some(parent) => Finding::fail(
                ID,
                format!(
                    "your audit log {shown} cannot be created ({} is not writable for you): every carrier use is refused",
                    parent.display()
                ),
                format!("create {shown} owned by you (mode 0700), or set UKEY_AUDIT_DIR to a directory of yours"),
            ),
            None => Finding::fail(
                ID,
                format!("your audit log {shown} cannot be created: every carrier use is refused"),
                "set UKEY_AUDIT_DIR to a directory of yours",
            ),
        };
    }
    if !writable(dir) {
        return Finding::fail(
            ID,
            format!(
                "your audit log {shown} is not writable (read-only, or not yours): every carrier use is refused, \
                 since none could be recorded"
            ),
            format!("make {shown} writable for your account (it should be yours, mode 0700), or free its file system"),
        );
    }
    match verify_dir(dir, &[]) {
        Ok(report) if report.ok() => {
            let warnings = report.findings.iter().filter(|f| f.severity == Severity::Warning).count();
            let mut message =
                format!("your audit log {shown} is writable and its chain verifies ({} records", report.records);
            if warnings > 0 {
                message.push_str(&format!("; {warnings} warning(s), see `ukey audit verify`"));
            }
            message.push(')');
            Finding::ok(ID, message)
        }
        Ok(report) => {
            let first = report.findings.iter().find(|f| f.severity == Severity::Error);
            let what = first
                .map(|f| {
                    let at = match (&f.file, f.line) {
                        (Some(file), Some(line)) => format!(" ({file}, line {line})"),
                        _ => String::new(),
                    };
                    format!("{}{at}", f.message)
                })
                .unwrap_or_default();
            Finding::fail(
                ID,
                format!("your audit log {shown} does not verify: {what} ({} problem(s) in all)", report.errors()),
                "run `ukey audit verify` for every problem; keep the files as they are (they are evidence) and tell \
                 your helpdesk",
            )
        }
        Err(e) => Finding::fail(
            ID,
            format!("your audit log {shown} cannot be read: {e}"),
            format!("make {shown} readable for your account, or tell your helpdesk"),
        ),
    }
}

/// Whether this account may create files in `dir` (a read-only file system counts as no).
fn writable(dir: &Path) -> bool {
    use rustix::fs::{Access, access};
    access(dir, Access::WRITE_OK | Access::EXEC_OK).is_ok()
}

fn nearest_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors().skip(1).find(|p| p.is_dir()).map(Path::to_path_buf)
}
