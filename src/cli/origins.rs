//! `ukey origins list|pair|revoke`: the web sites paired with the agent.
//!
//! Through the running agent when there is one (so a revocation takes effect at once and the
//! change is logged by the agent), else directly on the store file.

use std::collections::BTreeSet;

use clap::Subcommand;
use serde_json::{Value, json};

use ukey_api::Error;

use crate::agent::client::AgentClient;
use crate::agent::origins::{Grant, OriginStore};
use crate::agent::settings::AgentSettings;
use crate::agent::webguard::WebOrigin;
use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::{CliError, CliResult};
use crate::cli::output::{Table, sanitize, utc_time};

/// `ukey origins ...`
#[derive(Debug, Subcommand)]
pub enum OriginsCommand {
    /// List paired origins and their grants.
    List,
    /// Pair an origin without a dialog (you are the holder, at your own terminal).
    Pair {
        /// The origin, e.g. https://bank.example
        origin: String,
        /// Also allow enrolment (key generation, CSRs, certificate import).
        #[arg(long)]
        enroll: bool,
    },
    /// Revoke an origin: it must pair again (with the holder's confirmation) before it can do
    /// anything.
    Revoke {
        /// The origin, e.g. https://bank.example
        origin: String,
    },
}

impl Run for OriginsCommand {
    fn run(self, ctx: &Context) -> CliResult {
        self.execute(&ctx.config.file.agent, ctx.out.json)
    }
}

impl OriginsCommand {
    /// Runs the command; prints a table, or JSON with `as_json`.
    pub fn execute(&self, settings: &AgentSettings, as_json: bool) -> CliResult {
        let mut agent = AgentClient::connect_if_running(settings.runtime_dir.as_deref()).map_err(Error::from)?;
        let via = |r: Result<Value, crate::agent::client::ClientError>| r.map_err(|e| CliError::from(Error::from(e)));
        let result = match (self, agent.as_mut()) {
            (OriginsCommand::List, Some(a)) => via(a.call("origins.list", json!({})))?,
            (OriginsCommand::List, None) => json!({ "origins": store(settings)?.list()? }),
            (OriginsCommand::Pair { origin, enroll }, Some(a)) => {
                via(a.call("origins.pair", json!({ "origin": origin, "grants": grants(*enroll) })))?
            }
            (OriginsCommand::Pair { origin, enroll }, None) => {
                let canonical = WebOrigin::parse(origin).map_err(CliError::Usage)?.to_string();
                json!(store(settings)?.pair(&canonical, &grants(*enroll))?)
            }
            (OriginsCommand::Revoke { origin }, Some(a)) => via(a.call("origins.revoke", json!({ "origin": origin })))?,
            (OriginsCommand::Revoke { origin }, None) => {
                let canonical = WebOrigin::parse(origin).map(|o| o.to_string()).unwrap_or(origin.clone());
                json!({ "origin": canonical, "revoked": store(settings)?.revoke(&canonical)? })
            }
        };
        if as_json {
            println!("{result}");
            return Ok(());
        }
        match self {
            OriginsCommand::List => print_list(&result),
            OriginsCommand::Pair { .. } => {
                println!("paired {} for {}", result["origin"].as_str().unwrap_or("?"), grant_names(&result["grants"]))
            }
            OriginsCommand::Revoke { .. } => {
                let origin = result["origin"].as_str().unwrap_or("?");
                if result["revoked"].as_bool() == Some(true) {
                    println!("revoked {origin}");
                } else {
                    return Err(Error::NotFound(format!(
                        "{origin} was not paired; `ukey origins list` shows the paired ones"
                    ))
                    .into());
                }
            }
        }
        Ok(())
    }
}

fn store(settings: &AgentSettings) -> Result<OriginStore, ukey_api::Error> {
    Ok(OriginStore::open(OriginStore::default_path(settings.data_dir.as_deref())?))
}

fn grants(enroll: bool) -> BTreeSet<Grant> {
    let mut g: BTreeSet<Grant> = [Grant::Sign].into_iter().collect();
    if enroll {
        g.insert(Grant::Enroll);
    }
    g
}

fn grant_names(v: &Value) -> String {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

fn print_list(result: &Value) {
    let list = result["origins"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no origins are paired");
        return;
    }
    let mut table = Table::new(&["ORIGIN", "GRANTS", "PAIRED"]);
    for o in list {
        table.row(vec![
            sanitize(o["origin"].as_str().unwrap_or("?")),
            grant_names(&o["grants"]),
            o["paired_at"].as_i64().map(utc_time).unwrap_or_default(),
        ]);
    }
    let _ = table.write(&mut std::io::stdout());
}
