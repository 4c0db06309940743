//! `ukey origins list|pair|revoke`: the web sites paired with the agent.
//!
//! Through the running agent when there is one (so a revocation takes effect at once and the
//! change is logged by the agent), else directly on the store file.

use std::collections::BTreeSet;

use clap::Subcommand;
use serde_json::{Value, json};

use crate::agent::client::{AgentClient, ClientError};
use crate::agent::origins::{Grant, OriginStore};
use crate::agent::settings::AgentSettings;
use crate::agent::webguard::WebOrigin;

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

impl OriginsCommand {
    /// Runs the command; prints a table, or JSON with `as_json`.
    pub fn execute(&self, settings: &AgentSettings, as_json: bool) -> Result<(), Box<dyn std::error::Error>> {
        let mut agent = AgentClient::connect_if_running(settings.runtime_dir.as_deref())?;
        let result = match (self, agent.as_mut()) {
            (OriginsCommand::List, Some(a)) => a.call("origins.list", json!({}))?,
            (OriginsCommand::List, None) => json!({ "origins": store(settings)?.list()? }),
            (OriginsCommand::Pair { origin, enroll }, Some(a)) => {
                a.call("origins.pair", json!({ "origin": origin, "grants": grants(*enroll) }))?
            }
            (OriginsCommand::Pair { origin, enroll }, None) => {
                let canonical = WebOrigin::parse(origin).map_err(|e| ClientError::Protocol(e))?.to_string();
                json!(store(settings)?.pair(&canonical, &grants(*enroll))?)
            }
            (OriginsCommand::Revoke { origin }, Some(a)) => a.call("origins.revoke", json!({ "origin": origin }))?,
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
                    return Err(format!("{origin} was not paired; `ukey origins list` shows the paired ones").into());
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
    println!("{:<48} {:<14} PAIRED (UTC)", "ORIGIN", "GRANTS");
    for o in list {
        let when = o["paired_at"].as_i64().map(format_time).unwrap_or_default();
        println!("{:<48} {:<14} {when}", o["origin"].as_str().unwrap_or("?"), grant_names(&o["grants"]));
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` (UTC), without a date crate.
fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00");
        assert_eq!(super::format_time(1_700_000_000), "2023-11-14 22:13");
    }
}
