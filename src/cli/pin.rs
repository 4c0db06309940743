//! `ukey pin status|change|unblock`: the PIN lifecycle of a token, for holders and the helpdesk.

use std::io::{self, Write};

use clap::{Args, Subcommand};
use serde::Serialize;
use ukey_api::{Carrier, Credential, PinRole, PinState};

use crate::cli::Run;
use crate::cli::context::{Context, token_name};
use crate::cli::error::CliResult;
use crate::cli::output::{Render, Table};
use crate::cli::tokens::pin_summary;
use crate::resolve::{filter_carriers, select_carrier};

/// Show, change or unblock PINs.
#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// Show tries left and whether the PINs are locked (spends no try).
    Status(TokenArg),
    /// Change the user PIN (or with --so the SO PIN), given the current one.
    Change(ChangeArgs),
    /// Unblock a locked user PIN with the SO PIN and set a new user PIN.
    Unblock(TokenArg),
}

/// The optional `--token` of the PIN commands.
#[derive(Debug, Args)]
pub struct TokenArg {
    /// The token (label, serial, carrier id or PKCS#11 URI); may be left out when there is one.
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
}

/// `ukey pin change`
#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    token: TokenArg,
    /// Change the SO PIN instead of the user PIN.
    #[arg(long)]
    so: bool,
}

impl Run for PinCommand {
    fn run(self, ctx: &Context) -> CliResult {
        match self {
            PinCommand::Status(args) => status(ctx, args.token.as_deref()),
            PinCommand::Change(args) => {
                change(ctx, args.token.token.as_deref(), if args.so { PinRole::So } else { PinRole::User })
            }
            PinCommand::Unblock(args) => unblock(ctx, args.token.as_deref()),
        }
    }
}

/// `ukey pin status --json`
#[derive(Debug, Serialize)]
pub struct PinStatusReport {
    /// One entry per token.
    pub tokens: Vec<PinStatusView>,
}

/// PIN state of one token.
#[derive(Debug, Serialize)]
pub struct PinStatusView {
    /// Token label.
    pub token: String,
    /// Token serial.
    pub serial: String,
    /// The state, or null when it could not be read (see `error`).
    pub pin: Option<PinState>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Render for PinStatusReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut table = Table::new(&["TOKEN", "SERIAL", "USER PIN", "SO PIN"]);
        for t in &self.tokens {
            let (user, so) = match (&t.pin, &t.error) {
                (Some(p), _) => (pin_summary(&p.user), pin_summary(&p.so)),
                (None, e) => (format!("? ({})", e.as_deref().unwrap_or("unknown")), "?".into()),
            };
            table.row(vec![t.token.clone(), t.serial.clone(), user, so]);
        }
        table.write(out)?;
        if self.tokens.iter().any(|t| t.pin.as_ref().is_some_and(|p| p.user.locked)) {
            writeln!(out, "A locked user PIN is unblocked with the SO PIN: `ukey pin unblock --token T`.")?;
        }
        Ok(())
    }
}

fn status(ctx: &Context, token: Option<&str>) -> CliResult {
    let inventory = ctx.inventory();
    let carriers = filter_carriers(&inventory, token)?;
    let tokens = carriers
        .iter()
        .map(|c| {
            let (pin, error) = match c.pin_state() {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(e.to_string())),
            };
            PinStatusView { token: c.info().label.clone(), serial: c.info().serial.clone(), pin, error }
        })
        .collect();
    ctx.out.emit(&PinStatusReport { tokens })
}

/// `ukey pin change|unblock --json`
#[derive(Debug, Serialize)]
pub struct PinChangeReport {
    /// Token label.
    pub token: String,
    /// Token serial.
    pub serial: String,
    /// `changed` or `unblocked`.
    pub result: &'static str,
    /// Which PIN was set: `user` or `so`.
    pub role: PinRole,
    /// The state afterwards, when readable.
    pub pin: Option<PinState>,
}

impl Render for PinChangeReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        let which = match self.role {
            PinRole::User => "user PIN",
            PinRole::So => "SO PIN",
        };
        match self.result {
            "unblocked" => {
                writeln!(out, "The user PIN of token \"{}\" is unblocked and set to the new value.", self.token)
            }
            _ => writeln!(out, "The {which} of token \"{}\" is changed.", self.token),
        }
    }
}

fn report(carrier: &dyn Carrier, result: &'static str, role: PinRole) -> PinChangeReport {
    PinChangeReport {
        token: carrier.info().label.clone(),
        serial: carrier.info().serial.clone(),
        result,
        role,
        pin: carrier.pin_state().ok(),
    }
}

fn change(ctx: &Context, token: Option<&str>, role: PinRole) -> CliResult {
    let inventory = ctx.inventory();
    let carrier = select_carrier(&inventory, token)?;
    let name = token_name(carrier.as_ref());
    let old = ctx.pins.current(role, &name)?;
    let new = ctx.pins.new_pin(role, &name)?;
    carrier.change_pin(role, &Credential::Pin(old), &new)?;
    ctx.out.emit(&report(carrier.as_ref(), "changed", role))
}

fn unblock(ctx: &Context, token: Option<&str>) -> CliResult {
    let inventory = ctx.inventory();
    let carrier = select_carrier(&inventory, token)?;
    let name = token_name(carrier.as_ref());
    let so = ctx.pins.current(PinRole::So, &name)?;
    let new = ctx.pins.new_pin(PinRole::User, &name)?;
    carrier.unblock_pin(&Credential::Pin(so), &new)?;
    ctx.out.emit(&report(carrier.as_ref(), "unblocked", PinRole::User))
}
