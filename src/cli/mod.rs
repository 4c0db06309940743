//! The `ukey` command line. (Interim: the agent's commands only, until the CLI branch lands
//! with the full command set; these files then plug into it with one line each.)

pub mod agent;
pub mod origins;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use log::{LevelFilter, Log, Metadata, Record};

use crate::agent::settings::AgentSettings;

/// ukey: use the certificate and key on your USB key, smart card or software token.
#[derive(Debug, Parser)]
#[command(name = "ukey", version, about)]
pub struct Cli {
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local agent that web pages and programs sign through (or show/stop it).
    Agent(agent::AgentArgs),
    /// List, pair or revoke the web sites allowed to use the agent.
    #[command(subcommand)]
    Origins(origins::OriginsCommand),
}

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("ukey: {}: {}", record.level().as_str().to_ascii_lowercase(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(match cli.verbose {
            0 => LevelFilter::Error,
            1 => LevelFilter::Warn,
            2 => LevelFilter::Info,
            _ => LevelFilter::Debug,
        });
    }
    let base = AgentSettings::default();
    let outcome: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Agent(a) => match a.command {
            Some(agent::AgentCommand::Status) => agent::status(&base, cli.json).map_err(Into::into),
            Some(agent::AgentCommand::Stop) => agent::stop(&base).map_err(Into::into),
            None => a.run.settings(base).map_err(Into::into).and_then(|s| {
                if a.run.detach {
                    agent::run_detached(&s).map_err(Into::into)
                } else {
                    if cli.verbose >= 3 {
                        log::set_max_level(LevelFilter::Debug);
                    }
                    agent::run_foreground(s, Vec::new()).map_err(Into::into)
                }
            }),
        },
        Command::Origins(o) => o.execute(&base, cli.json),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ukey: error: {e}");
            ExitCode::FAILURE
        }
    }
}
