//! `ukey audit show|verify|anchor`: read the audit log, check its chain, take an anchor.
//!
//! Without options these work on your own log (`UKEY_AUDIT_DIR`, else
//! `$XDG_STATE_HOME/ukey/audit`); `--system` picks the helpdesk's log, `--dir D` any log
//! directory (a copy collected from another machine, say).

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use ukey_api::Error;

use crate::audit::read::{Filter, ReadRecord, read_dir};
use crate::audit::time::parse_seconds;
use crate::audit::verify::{Anchor, Report, Severity};
use crate::audit::{Event, verify_dir};
use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::{CliError, CliResult};
use crate::cli::output::{Render, Table};
use crate::policy::paths::SystemPaths;

/// `ukey audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show records, oldest first (filters combine).
    Show(ShowArgs),
    /// Check the chain: finds edited, deleted, reordered and truncated records and says where.
    Verify(VerifyArgs),
    /// Print the end of the chain as SEQ:HASH, to keep somewhere else (a later
    /// `ukey audit verify --anchor SEQ:HASH` proves the log was not rewritten before it).
    Anchor(WhichLog),
}

/// Which log.
#[derive(Debug, Args)]
pub struct WhichLog {
    /// The helpdesk's system log instead of your own.
    #[arg(long, conflicts_with = "dir")]
    pub system: bool,
    /// A log directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl WhichLog {
    /// The directory chosen.
    pub fn resolve(&self) -> CliResult<PathBuf> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        if self.system {
            return Ok(SystemPaths::from_env().audit);
        }
        crate::audit::paths::user_audit_dir().ok_or_else(|| {
            CliError::Usage(
                "cannot find your audit log: set UKEY_AUDIT_DIR, XDG_STATE_HOME or HOME, or pass --dir".into(),
            )
        })
    }
}

/// `ukey audit show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Which log.
    #[command(flatten)]
    pub log: WhichLog,
    /// Only records at or after this time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ).
    #[arg(long, value_name = "TIME", value_parser = time_arg)]
    pub since: Option<u64>,
    /// Only records before this time.
    #[arg(long, value_name = "TIME", value_parser = time_arg)]
    pub until: Option<u64>,
    /// Only this account (login name or uid).
    #[arg(long, value_name = "LOGIN")]
    pub account: Option<String>,
    /// Only carriers whose id or serial contains this.
    #[arg(long, value_name = "TEXT")]
    pub carrier: Option<String>,
    /// Only this event: intent, use, refusal, helpdesk, notice, recovery, seal.
    #[arg(long, value_name = "EVENT", value_parser = event_arg)]
    pub event: Option<Event>,
    /// Only this operation (sign, authenticate, bind, ...).
    #[arg(long, value_name = "OP")]
    pub op: Option<String>,
    /// Only this result: done, failed, refused.
    #[arg(long, value_name = "RESULT")]
    pub result: Option<String>,
    /// Show the last N matching records (0: all).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
}

/// `ukey audit verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Which log.
    #[command(flatten)]
    pub log: WhichLog,
    /// A record hash kept elsewhere (SEQ:HASH or HASH) that must still be in the log; repeatable.
    #[arg(long, value_name = "SEQ:HASH", value_parser = Anchor::parse)]
    pub anchor: Vec<Anchor>,
}

fn time_arg(text: &str) -> Result<u64, String> {
    parse_seconds(text).ok_or_else(|| format!("`{text}` is not a time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)"))
}

fn event_arg(text: &str) -> Result<Event, String> {
    Event::parse(text).ok_or_else(|| {
        format!("`{text}` is not an event: use intent, use, refusal, helpdesk, notice, recovery or seal")
    })
}

impl Run for AuditCommand {
    fn run(self, ctx: &Context) -> CliResult {
        match self {
            AuditCommand::Show(a) => show(a, ctx),
            AuditCommand::Verify(a) => verify(a, ctx),
            AuditCommand::Anchor(w) => anchor(w, ctx),
        }
    }
}

/// `ukey audit show` output.
#[derive(Debug, Serialize)]
struct ShowReport {
    dir: PathBuf,
    records: Vec<ShownRecord>,
}

#[derive(Debug, Serialize)]
struct ShownRecord {
    hash: String,
    record: crate::audit::Record,
}

impl Render for ShowReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.records.is_empty() {
            return writeln!(out, "No matching records in {}.", self.dir.display());
        }
        let mut t = Table::new(&["SEQ", "TIME", "EVENT", "ACCOUNT", "CLIENT", "CARRIER", "OP", "RESULT"]);
        for r in &self.records {
            let rec = &r.record;
            let result = match (&rec.result, &rec.reason) {
                (Some(res), Some(why)) => format!("{res}: {why}"),
                (Some(res), None) => res.clone(),
                (None, Some(why)) => why.clone(),
                (None, None) => String::new(),
            };
            t.row(vec![
                rec.seq.to_string(),
                rec.time.clone(),
                rec.event.as_str().to_string(),
                rec.account.clone().or(rec.uid.map(|u| format!("uid {u}"))).unwrap_or_default(),
                rec.client.clone().unwrap_or_default(),
                rec.serial.clone().or(rec.carrier.clone()).unwrap_or_default(),
                rec.op.clone().unwrap_or_default(),
                result,
            ]);
        }
        t.write(out)
    }
}

fn show(a: ShowArgs, ctx: &Context) -> CliResult {
    let dir = a.log.resolve()?;
    if !dir.is_dir() {
        return Err(Error::NotFound(format!("no audit log at {} (nothing was recorded yet)", dir.display())).into());
    }
    let filter = Filter {
        since: a.since,
        until: a.until,
        account: a.account,
        carrier: a.carrier,
        event: a.event,
        op: a.op,
        result: a.result,
    };
    let limit = if a.limit == 0 { None } else { Some(a.limit) };
    let records = read_dir(&dir, &filter, limit).map_err(|e| CliError::from(Error::InvalidInput(e.to_string())))?;
    let records =
        records.into_iter().map(|ReadRecord { record, hash }| ShownRecord { hash, record }).collect::<Vec<_>>();
    ctx.out.emit(&ShowReport { dir, records })
}

/// `ukey audit verify` output.
#[derive(Debug, Serialize)]
struct VerifyReport {
    ok: bool,
    #[serde(flatten)]
    report: Report,
}

impl Render for VerifyReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = &self.report;
        let span = match (r.first_seq, r.last_seq) {
            (Some(a), Some(b)) => format!(", seq {a}..{b}"),
            _ => String::new(),
        };
        writeln!(out, "Audit log {}: {} records in {} files{span}", r.dir.display(), r.records, r.files.len())?;
        for f in &r.findings {
            let level = match f.severity {
                Severity::Error => "ERROR",
                Severity::Warning => "warning",
            };
            writeln!(out, "  {level}: {}", crate::cli::output::sanitize(&f.message))?;
        }
        for a in &r.anchors_found {
            writeln!(out, "  anchor found: {}{}", a.seq.map(|s| format!("{s}:")).unwrap_or_default(), a.hash)?;
        }
        if self.ok {
            writeln!(out, "Chain intact.")?;
            if let (Some(seq), Some(hash)) = (r.last_seq, &r.last_hash) {
                writeln!(out, "Anchor to keep elsewhere: {seq}:{hash}")?;
            }
        } else {
            writeln!(out, "Chain BROKEN: {} errors.", r.errors())?;
        }
        Ok(())
    }
}

fn verify(a: VerifyArgs, ctx: &Context) -> CliResult {
    let dir = a.log.resolve()?;
    if !dir.is_dir() {
        return Err(Error::NotFound(format!("no audit log at {}", dir.display())).into());
    }
    let report = verify_dir(&dir, &a.anchor).map_err(|e| CliError::from(Error::InvalidInput(e.to_string())))?;
    let ok = report.ok();
    let errors = report.errors();
    let first = report.findings.iter().find(|f| f.severity == Severity::Error).map(|f| f.message.clone());
    ctx.out.emit(&VerifyReport { ok, report })?;
    if ok {
        Ok(())
    } else {
        Err(CliError::AuditBroken(format!("{errors} errors; the first: {}", first.unwrap_or_default())))
    }
}

/// `ukey audit anchor` output.
#[derive(Debug, Serialize)]
struct AnchorReport {
    dir: PathBuf,
    seq: u64,
    hash: String,
}

impl Render for AnchorReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}:{}", self.seq, self.hash)
    }
}

fn anchor(w: WhichLog, ctx: &Context) -> CliResult {
    let dir = w.resolve()?;
    if !dir.is_dir() {
        return Err(Error::NotFound(format!("no audit log at {}", dir.display())).into());
    }
    let end = crate::audit::tail::chain_end(&dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    match end {
        Some(head) => ctx.out.emit(&AnchorReport { dir, seq: head.seq, hash: head.hash }),
        None => Err(Error::NotFound(format!("the audit log at {} is empty", dir.display())).into()),
    }
}
