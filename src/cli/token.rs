//! `ukey token init`: creates a software token, or re-initialises an existing carrier (which
//! erases its keys, certificates and data) with its SO PIN.

use std::io::{self, Write};

use clap::{Args, Subcommand};
use ukey_api::{InitRequest, PinRole};

use crate::cli::Run;
use crate::cli::context::{Context, token_name};
use crate::cli::error::{CliError, CliResult};
use crate::cli::output::Render;
use crate::cli::tokens::TokenView;
use crate::resolve::select_carrier;

/// Set up tokens.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a software token (--soft), or re-initialise a token with its SO PIN (--token),
    /// which erases every key and certificate on it.
    Init(InitArgs),
}

impl Run for TokenCommand {
    fn run(self, ctx: &Context) -> CliResult {
        match self {
            TokenCommand::Init(args) => args.run(ctx),
        }
    }
}

/// `ukey token init (--soft | --token T) --label L`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["soft", "token"])))]
pub struct InitArgs {
    /// Create a new software token in the soft-token directory (asks for its SO PIN and user PIN).
    #[arg(long)]
    pub soft: bool,
    /// Re-initialise this existing token (label, serial, carrier id or PKCS#11 URI).
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// The token's (new) label.
    #[arg(long, value_name = "L")]
    pub label: String,
}

/// Human output of `token init`.
struct Initialised {
    created: bool,
    token: TokenView,
}

impl serde::Serialize for Initialised {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.token.serialize(s)
    }
}

impl Render for Initialised {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        let t = &self.token;
        let verb = if self.created { "Created software token" } else { "Re-initialised token" };
        writeln!(out, "{verb} \"{}\" (serial {})", t.label, t.serial)?;
        writeln!(out, "  id:       {}", t.id)?;
        writeln!(out, "  location: {}", t.location)?;
        writeln!(out, "  uri:      {}", t.uri)
    }
}

impl Run for InitArgs {
    fn run(self, ctx: &Context) -> CliResult {
        if self.label.trim().is_empty() {
            return Err(CliError::Usage("--label is empty; give the token a name".into()));
        }
        if self.soft {
            return create_soft(ctx, &self.label);
        }
        let inventory = ctx.inventory();
        let carrier = select_carrier(&inventory, self.token.as_deref())?;
        let name = token_name(carrier.as_ref());
        ctx.out.note(&format!("Re-initialising {name}: every key, certificate and data object on it is erased."));
        let so_pin = ctx.pins.current(PinRole::So, &name)?;
        let user_pin = ctx.pins.new_pin(PinRole::User, &name)?;
        carrier.initialize(&InitRequest { so_pin, label: self.label.clone(), user_pin: Some(user_pin) })?;
        // The label changed: list again to show the carrier as it is now.
        let fresh = ctx.registry().inventory();
        let now = fresh
            .carriers
            .iter()
            .find(|c| c.info().id == carrier.info().id)
            .map(|c| TokenView::of(c.as_ref()))
            .unwrap_or_else(|| TokenView::of(carrier.as_ref()));
        ctx.out.emit(&Initialised { created: false, token: now })
    }
}

/// Creates a software token with a new SO PIN and user PIN.
fn create_soft(ctx: &Context, label: &str) -> CliResult {
    let driver = ukey_soft::SoftDriver::open(&ctx.config.soft_dir);
    let name = crate::cli::output::sanitize(&format!("the new software token \"{label}\""));
    let so_pin = ctx.pins.so_pin_to_set(&name)?;
    let user_pin = ctx.pins.new_pin(PinRole::User, &name)?;
    let carrier = driver.create_token(label, &so_pin, &user_pin)?;
    ctx.out.emit(&Initialised { created: true, token: TokenView::of(carrier.as_ref()) })
}
