//! `ukey tokens`: every carrier ukey can reach, with its PIN state.

use std::io::{self, Write};

use clap::Args;
use serde::Serialize;
use ukey_api::{Carrier, PinState, PinStatus};

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, Table};
use crate::registry::DriverProblem;
use crate::resolve::token_uri;

/// List the tokens (USB keys, smart cards, software tokens) ukey can reach.
#[derive(Debug, Args)]
pub struct TokensArgs {}

/// `ukey tokens --json`
#[derive(Debug, Serialize)]
pub struct TokensReport {
    /// One entry per carrier.
    pub tokens: Vec<TokenView>,
    /// Drivers that could not contribute (module missing, service down).
    pub problems: Vec<DriverProblem>,
}

/// One carrier, as `ukey tokens --json` shows it.
#[derive(Debug, Serialize)]
pub struct TokenView {
    /// Stable carrier id (`soft:SERIAL`, `pcsc:READER:SERIAL`, ...).
    pub id: String,
    /// `soft`, `pkcs11`, `pcsc` or `hid`.
    pub kind: String,
    /// Token label.
    pub label: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Where it is reached (directory, module and slot, reader).
    pub location: String,
    /// PKCS#11 URI naming the token.
    pub uri: String,
    /// Keys live in host files: not a hardware carrier.
    pub software: bool,
    /// The token has been initialised.
    pub initialized: bool,
    /// PIN state, or null when it could not be read (see `pin_error`).
    pub pin: Option<PinState>,
    /// Why the PIN state could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_error: Option<String>,
}

impl TokenView {
    /// Describes a carrier, reading its PIN state (which spends no try).
    pub fn of(carrier: &dyn Carrier) -> Self {
        let info = carrier.info();
        let (pin, pin_error) = match carrier.pin_state() {
            Ok(state) => (Some(state), None),
            Err(e) => (None, Some(e.to_string())),
        };
        TokenView {
            id: info.id.to_string(),
            kind: info.kind.to_string(),
            label: info.label.clone(),
            manufacturer: info.manufacturer.clone(),
            model: info.model.clone(),
            serial: info.serial.clone(),
            location: info.location.clone(),
            uri: token_uri(info).to_string(),
            software: info.software,
            initialized: info.initialized,
            pin,
            pin_error,
        }
    }
}

/// Short text for a PIN's state: `6 tries`, `LOCKED`, `must change`, ...
pub fn pin_summary(status: &PinStatus) -> String {
    if status.locked {
        return "LOCKED".into();
    }
    let mut text = match (status.retries_left, status.max_retries) {
        (Some(left), Some(max)) => format!("{left}/{max} tries"),
        (Some(left), None) => format!("{left} tries"),
        (None, _) if status.final_try => "final try".into(),
        (None, _) if status.count_low => "tries used".into(),
        (None, _) => "ok".into(),
    };
    if status.must_change {
        text.push_str(", must change");
    }
    if status.default_pin == Some(true) {
        text.push_str(", default PIN");
    }
    text
}

impl Render for TokensReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.tokens.is_empty() && !self.problems.is_empty() {
            writeln!(out, "No readable tokens found.")?;
        } else if self.tokens.is_empty() {
            writeln!(out, "No tokens found. Create a software token with `ukey token init --soft --label NAME`.")?;
        } else {
            let mut table = Table::new(&["LABEL", "KIND", "SERIAL", "MODEL", "USER PIN", "SO PIN", "ID"]);
            for t in &self.tokens {
                let (user, so) = match &t.pin {
                    Some(p) => (pin_summary(&p.user), pin_summary(&p.so)),
                    None => ("?".into(), "?".into()),
                };
                let kind =
                    if t.software && t.kind != "soft" { format!("{} (software)", t.kind) } else { t.kind.clone() };
                table.row(vec![t.label.clone(), kind, t.serial.clone(), t.model.clone(), user, so, t.id.clone()]);
            }
            table.write(out)?;
        }
        for p in &self.problems {
            writeln!(out, "warning: {}: {}", p.driver, crate::cli::output::sanitize(&p.message))?;
        }
        Ok(())
    }
}

impl Run for TokensArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let inventory = ctx.inventory();
        let tokens = inventory.carriers.iter().map(|c| TokenView::of(c.as_ref())).collect();
        ctx.out.emit(&TokensReport { tokens, problems: inventory.problems })
    }
}
