//! `ukey catalog`: the carrier models ukey knows — list them, check the unit's and the holder's
//! catalog files, and print the udev rules that give the logged-in holder access to every
//! catalog carrier.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use ukey_api::Error;
use ukey_catalog::{Catalog, CatalogDirs, CatalogProblem, Entry, load, udev};

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, Table, sanitize, write_output};

/// List the known carrier models, check catalog files, or generate udev rules.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// List the carrier models in the catalog (seed, /etc/ukey/catalog.d, ~/.config/ukey/catalog.d).
    List(ListArgs),
    /// Check the system and user catalog files and print every problem (exit 1 on errors).
    Check(CheckArgs),
    /// Print udev rules that let the logged-in holder use every catalog carrier without root.
    Udev(UdevArgs),
}

/// Which catalog layers to load.
#[derive(Debug, Args)]
pub struct LayerArgs {
    /// Use only the catalog built into ukey (ignore /etc/ukey/catalog.d and the user's files).
    #[arg(long)]
    pub seed_only: bool,
}

impl LayerArgs {
    /// The directories to read: from UKEY_SYSTEM_DIR / UKEY_CONFIG_DIR / XDG, or none.
    fn dirs(&self) -> CatalogDirs {
        if self.seed_only { CatalogDirs::seed_only() } else { CatalogDirs::from_env() }
    }

    fn load(&self) -> (CatalogDirs, Catalog, Vec<CatalogProblem>) {
        let dirs = self.dirs();
        let (catalog, problems) = load(&dirs);
        (dirs, catalog, problems)
    }
}

/// `ukey catalog list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Which layers.
    #[command(flatten)]
    pub layers: LayerArgs,
}

/// `ukey catalog check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Which layers.
    #[command(flatten)]
    pub layers: LayerArgs,
}

/// `ukey catalog udev`
#[derive(Debug, Args)]
pub struct UdevArgs {
    /// Which layers (use --seed-only for the rules shipped with ukey, udev/70-ukey.rules).
    #[command(flatten)]
    pub layers: LayerArgs,
    /// Write the rules to this file (replaced atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

impl Run for CatalogCommand {
    fn run(self, ctx: &Context) -> CliResult {
        match self {
            CatalogCommand::List(a) => a.run(ctx),
            CatalogCommand::Check(a) => a.run(ctx),
            CatalogCommand::Udev(a) => a.run(ctx),
        }
    }
}

/// `ukey catalog list --json`
#[derive(Debug, Serialize)]
pub struct ListReport<'a> {
    /// Every entry, by id.
    pub entries: Vec<&'a Entry>,
    /// Problems found while loading (the entries concerned are missing above).
    pub problems: &'a [CatalogProblem],
}

impl Render for ListReport<'_> {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut table = Table::new(&["ID", "MANUFACTURER", "MODEL", "INTERFACE", "USB", "COMPLIANT", "FROM"]);
        for e in &self.entries {
            let usb = e.usb.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(" ");
            let compliant = if e.compliance.compliant { "yes" } else { "no" };
            table.row(vec![
                e.id.clone(),
                e.manufacturer.clone(),
                e.model.clone(),
                e.interface.to_string(),
                if usb.is_empty() { "-".into() } else { usb },
                compliant.into(),
                e.origin.layer.to_string(),
            ]);
        }
        table.write(out)?;
        for p in self.problems {
            writeln!(out, "{}", sanitize(&p.to_string()))?;
        }
        Ok(())
    }
}

impl Run for ListArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let (_, catalog, problems) = self.layers.load();
        ctx.out.emit(&ListReport { entries: catalog.entries_by_id(), problems: &problems })
    }
}

/// `ukey catalog check --json`
#[derive(Debug, Serialize)]
pub struct CheckReport<'a> {
    /// The system catalog directory read, if any.
    pub system_dir: Option<&'a PathBuf>,
    /// The user catalog directory read, if any.
    pub user_dir: Option<&'a PathBuf>,
    /// Every file read, seed files as `seed:NAME`.
    pub files: &'a [PathBuf],
    /// Number of entries loaded.
    pub entries: usize,
    /// Every problem, errors and warnings.
    pub problems: &'a [CatalogProblem],
}

impl Render for CheckReport<'_> {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        for (what, dir) in [("system", self.system_dir), ("user", self.user_dir)] {
            if let Some(dir) = dir {
                writeln!(out, "{what} catalog: {}", sanitize(&dir.display().to_string()))?;
            }
        }
        for p in self.problems {
            writeln!(out, "{}", sanitize(&p.to_string()))?;
        }
        let errors = self.problems.iter().filter(|p| p.is_error()).count();
        let warnings = self.problems.len() - errors;
        writeln!(out, "{} entries from {} files; {errors} errors, {warnings} warnings", self.entries, self.files.len())
    }
}

impl Run for CheckArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let (dirs, catalog, problems) = self.layers.load();
        ctx.out.emit(&CheckReport {
            system_dir: dirs.system.as_ref(),
            user_dir: dirs.user.as_ref(),
            files: catalog.files(),
            entries: catalog.len(),
            problems: &problems,
        })?;
        let errors = problems.iter().filter(|p| p.is_error()).count();
        if errors > 0 {
            return Err(Error::InvalidInput(format!(
                "{errors} catalog problem(s) above: the entries or files concerned were skipped; fix them and run `ukey catalog check` again"
            ))
            .into());
        }
        Ok(())
    }
}

impl Run for UdevArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let (_, catalog, problems) = self.layers.load();
        for p in &problems {
            ctx.out.warn(&p.to_string());
        }
        let rules = udev::render(&catalog);
        write_output(self.out.as_deref(), rules.as_bytes(), "udev rules")?;
        if let Some(path) = &self.out {
            ctx.out.note(&format!(
                "wrote {}; install it with: sudo cp {} /etc/udev/rules.d/{} && sudo udevadm control --reload && sudo udevadm trigger",
                path.display(),
                path.display(),
                udev::RULES_FILE_NAME
            ));
        }
        Ok(())
    }
}
