//! The `ukey` command line: one file per command group, shared output, PIN input and errors.
//!
//! To add a command: write `src/cli/NAME.rs` with a clap `Args` (or `Subcommand`) type that
//! implements [`Run`], declare the module below, and add one variant to [`Command`] plus its arm
//! in [`Command::run`].

pub mod agent;
pub mod agent_install;
pub mod audit;
pub mod catalog;
pub mod cert_import;
pub mod certs;
pub mod compliance;
pub mod context;
pub mod csr;
pub mod doctor;
pub mod error;
pub mod helpdesk;
pub mod keygen;
pub mod keys;
pub mod logging;
pub mod modules;
pub mod origins;
pub mod output;
pub mod pin;
pub mod pin_input;
pub mod pubkey;
pub mod sign;
pub mod sign_input;
pub mod token;
pub mod tokens;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use context::Context;
use error::{CliError, CliResult, report};
use output::Output;
use pin_input::PinInput;

/// A command that can run.
pub trait Run {
    /// Does the work and prints the result through `ctx.out`.
    fn run(self, ctx: &Context) -> CliResult;
}

/// ukey: use the certificate and key on your USB key, smart card or software token.
///
/// Tokens and keys are named by label, serial, hex id or PKCS#11 URI (RFC 7512). PINs come from a
/// no-echo prompt, --pin-file / --so-pin-file / --new-pin-file, or the UKEY_PIN / UKEY_SO_PIN /
/// UKEY_NEW_PIN environment variables — never from a plain argument.
///
/// Exit codes: 0 ok, 1 error, 2 usage, 3 PIN problem (wrong, locked, missing), 4 not found or
/// ambiguous, 5 signature (or `ukey audit verify`: the audit chain) does not verify, 6 refused by
/// the custody policy.
#[derive(Debug, Parser)]
#[command(name = "ukey", version, about, long_about, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Options that apply to every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted anywhere on the command line.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Print results as JSON on stdout (errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Directory holding the software tokens.
    #[arg(long, global = true, value_name = "DIR", env = "UKEY_SOFT_DIR", hide_env_values = true)]
    pub soft_dir: Option<PathBuf>,
    /// Start only these drivers (comma-separated: soft, pcsc, ...); default: all.
    #[arg(
        long,
        global = true,
        value_name = "LIST",
        env = "UKEY_DRIVERS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub drivers: Option<Vec<String>>,
    /// TOML config file (default: $XDG_CONFIG_HOME/ukey/config.toml, if it exists).
    #[arg(long, global = true, value_name = "FILE", env = "UKEY_CONFIG", hide_env_values = true)]
    pub config: Option<PathBuf>,
    /// Read the user PIN from this file (else UKEY_PIN, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    /// Read the SO PIN / PUK from this file (else UKEY_SO_PIN, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub so_pin_file: Option<PathBuf>,
    /// Read the new PIN from this file (else UKEY_NEW_PIN, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub new_pin_file: Option<PathBuf>,
    /// More log output on stderr (-v warnings, -vv info, -vvv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Every command of `ukey`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the tokens ukey can reach, with their PIN state.
    Tokens(tokens::TokensArgs),
    /// List certificates.
    Certs(certs::CertsArgs),
    /// List private keys and their certificates.
    Keys(keys::KeysArgs),
    /// Create a software token or re-initialise a token.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Generate a key pair on a token.
    Keygen(keygen::KeygenArgs),
    /// Print a key's public key (PEM).
    Pubkey(pubkey::PubkeyArgs),
    /// Make a certificate signing request (PKCS#10, PEM) for a key on a token.
    Csr(csr::CsrArgs),
    /// Import a certificate for a key on a token.
    #[command(subcommand)]
    Cert(cert_import::CertCommand),
    /// Sign data with a key on a token.
    Sign(sign::SignArgs),
    /// Verify a signature with a certificate or public key.
    Verify(verify::VerifyArgs),
    /// Show, change or unblock PINs.
    #[command(subcommand)]
    Pin(pin::PinCommand),
    /// List the PKCS#11 modules ukey found and whether each loaded.
    Modules(modules::ModulesArgs),
    /// Run the local agent that web pages and programs sign through (or show / stop it).
    Agent(agent::AgentArgs),
    /// List, pair or revoke the web sites allowed to use the agent.
    #[command(subcommand)]
    Origins(origins::OriginsCommand),
    /// Carrier models ukey knows: list, check catalog files, generate udev rules.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Show the audit log, verify its chain, take an anchor.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Helpdesk: register carriers to holders, suspend, revoke, unblock, reset, custody tags.
    #[command(subcommand)]
    Helpdesk(helpdesk::HelpdeskCommand),
    /// Compliance with Article 13: each requirement next to the evidence on this machine.
    #[command(subcommand)]
    Compliance(compliance::ComplianceCommand),
    /// Check that carriers can work here (services, devices, modules, permissions, agent,
    /// certificates) and say how to fix what is wrong.
    Doctor(doctor::DoctorArgs),
}

impl Command {
    /// Runs the chosen command.
    pub fn run(self, ctx: &Context) -> CliResult {
        match self {
            Command::Tokens(c) => c.run(ctx),
            Command::Certs(c) => c.run(ctx),
            Command::Keys(c) => c.run(ctx),
            Command::Token(c) => c.run(ctx),
            Command::Keygen(c) => c.run(ctx),
            Command::Pubkey(c) => c.run(ctx),
            Command::Csr(c) => c.run(ctx),
            Command::Cert(c) => c.run(ctx),
            Command::Sign(c) => c.run(ctx),
            Command::Verify(c) => c.run(ctx),
            Command::Pin(c) => c.run(ctx),
            Command::Modules(c) => c.run(ctx),
            Command::Agent(c) => c.run(ctx),
            Command::Origins(c) => c.run(ctx),
            Command::Catalog(c) => c.run(ctx),
            Command::Audit(c) => c.run(ctx),
            Command::Helpdesk(c) => c.run(ctx),
            Command::Compliance(c) => c.run(ctx),
            Command::Doctor(c) => c.run(ctx),
        }
    }
}

/// Parses the command line, runs the command and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    logging::init(cli.global.verbose);
    let out = Output { json: cli.global.json };
    match execute(cli, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e, out.json),
    }
}

fn execute(cli: Cli, out: Output) -> CliResult {
    let g = cli.global;
    let config = Config::load(&Overrides { config: g.config, soft_dir: g.soft_dir, drivers: g.drivers })?;
    let pins = PinInput { pin_file: g.pin_file, so_pin_file: g.so_pin_file, new_pin_file: g.new_pin_file };
    let ctx = Context::new(config, out, pins);
    cli.command.run(&ctx)
}

/// clap's own errors: help and version print normally; a wrong command line exits 2, as JSON
/// when `--json` appears among the arguments.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = std::env::args_os().any(|a| a == "--json");
    if !json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(error::EXIT_USAGE));
    }
    let message = e.render().to_string();
    let message = message.trim().trim_start_matches("error: ");
    let message = message.split("\n\nFor more information").next().unwrap_or(message).to_string();
    report(&CliError::Usage(message), true)
}
