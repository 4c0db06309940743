//! `ukey doctor`: every check of [`crate::doctor`], with what to do about each problem — ✔ fine,
//! ! worth knowing, ✘ broken — or as JSON with `--json` (`findings`: `check`, `subject`,
//! `status` ok|warn|fail, `message`, `fix`; and a `summary`). Exits 1 when any check fails.

use std::io::{self, Write};

use clap::Args;
use serde::Serialize;
use ukey_api::Error;

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, sanitize};
use crate::doctor::{self, CHECKS, Environment, Finding, Status};

/// `ukey doctor [--check ID]...`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Run only this check (repeatable): pcscd, readers, cards, usb, modules, pkcs11,
    /// permissions, udev-rules, agent, soft-store, custody, certificates.
    #[arg(long = "check", value_name = "ID")]
    pub checks: Vec<String>,
}

/// How many findings of each status.
#[derive(Debug, Default, Serialize)]
struct Summary {
    ok: usize,
    warn: usize,
    fail: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    findings: Vec<Finding>,
    summary: Summary,
}

impl Render for Report {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        for f in &self.findings {
            let mark = match f.status {
                Status::Ok => "✔",
                Status::Warn => "!",
                Status::Fail => "✘",
            };
            let subject = f.subject.as_deref().map(|s| format!(" [{}]", sanitize(s))).unwrap_or_default();
            writeln!(out, "{mark} {}{subject}: {}", f.check, sanitize(&f.message))?;
            if let Some(fix) = &f.fix {
                writeln!(out, "    fix: {}", sanitize(fix))?;
            }
        }
        let s = &self.summary;
        writeln!(out, "\n{} ok, {} warning(s), {} failure(s)", s.ok, s.warn, s.fail)
    }
}

impl Run for DoctorArgs {
    fn run(self, ctx: &Context) -> CliResult {
        if let Some(unknown) = self.checks.iter().find(|c| !CHECKS.iter().any(|k| k.id == c.as_str())) {
            let ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
            return Err(crate::cli::error::CliError::Usage(format!(
                "unknown check `{unknown}`; the checks are: {}",
                ids.join(", ")
            )));
        }
        let env = Environment::from_config(&ctx.config, Box::new(|| ctx.inventory()));
        let findings = doctor::run(&env, &self.checks);
        let mut summary = Summary::default();
        for f in &findings {
            match f.status {
                Status::Ok => summary.ok += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
            }
        }
        let failed = summary.fail;
        ctx.out.emit(&Report { findings, summary })?;
        if failed > 0 {
            return Err(Error::Device(format!("{failed} check(s) failed; each says above how to fix it")).into());
        }
        Ok(())
    }
}
