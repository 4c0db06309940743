//! `ukey modules`: the PKCS#11 modules ukey found (configuration, p11-kit registrations, the
//! carrier catalog, `UKEY_PKCS11_MODULES`) and whether each loaded.
//!
//! A module that is missing, is not a PKCS#11 library or fails `C_Initialize` is listed with the
//! reason and what to do; it never hides the others, and the command itself succeeds (it is a
//! report, not an operation). A module that does not answer its start-up calls within
//! `[pkcs11] init_timeout_ms` is listed as not loaded with that reason; a module left out on
//! purpose (OpenSC's p11-kit registration beside ukey's own PC/SC driver) as skipped.

use std::io::{self, Write};

use clap::Args;
use serde::Serialize;
use ukey_api::DriverStatus;
use ukey_pkcs11::ModuleReport;

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, Table, sanitize};

/// List the PKCS#11 modules ukey found and whether each loaded.
#[derive(Debug, Args)]
pub struct ModulesArgs {}

/// `ukey modules --json`
#[derive(Debug, Serialize)]
pub struct ModulesReport {
    /// One entry per module, loaded ones first.
    pub modules: Vec<ModuleReport>,
    /// Registrations that were skipped and settings that were ignored.
    pub notes: Vec<DriverStatus>,
}

impl Render for ModulesReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.modules.is_empty() {
            writeln!(
                out,
                "No PKCS#11 modules found. Name one in the [pkcs11] section of the config file \
                 ([[pkcs11.modules]] path = \"/usr/lib/.../vendor-pkcs11.so\") or register it with p11-kit."
            )?;
        } else {
            let mut table = Table::new(&["MODULE", "LOADED", "TOKENS", "SOURCE", "PATH"]);
            for m in &self.modules {
                table.row(vec![
                    sanitize(&m.name),
                    if m.loaded {
                        "yes".into()
                    } else if m.skipped {
                        "skipped".into()
                    } else {
                        "NO".into()
                    },
                    m.tokens.to_string(),
                    sanitize(&m.source),
                    sanitize(&m.path.display().to_string()),
                ]);
            }
            table.write(out)?;
            for m in &self.modules {
                let sm2 = m.sm2_profile.as_ref().map(|p| format!(" [SM2 profile {p}]")).unwrap_or_default();
                writeln!(out, "{}: {}{sm2}", sanitize(&m.name), sanitize(&m.message))?;
            }
        }
        for n in &self.notes {
            writeln!(out, "note: {}: {}", sanitize(&n.subject), sanitize(&n.message))?;
        }
        Ok(())
    }
}

impl Run for ModulesArgs {
    fn run(self, ctx: &Context) -> CliResult {
        // Only the PKCS#11 driver is needed: the other carrier families are not started.
        let driver = crate::registry::pkcs11_driver(&ctx.config);
        ctx.out.emit(&ModulesReport { modules: driver.modules(), notes: driver.notes().to_vec() })
    }
}
