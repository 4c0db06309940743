//! `pair`: a page asks the holder to allow its origin, through a pinentry CONFIRM dialog.
//!
//! The origin comes from the connection's `Origin` header (checked at the upgrade), never from
//! the page's parameters. Already-held grants answer at once; new grants need a new confirmation;
//! a refusal puts the origin on a cooldown (see `consent`).

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::agent::error::{AgentError, AgentResult};
use crate::agent::origins::Grant;
use crate::agent::service::{Service, Session, parse_params};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairParams {
    /// Grants asked for; `["sign"]` when absent.
    #[serde(default)]
    grants: Option<Vec<Grant>>,
}

impl Service {
    /// Pairs the session's origin after the holder confirms.
    pub(crate) async fn pair(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        let Some(origin) = session.origin() else {
            return Err(AgentError::Forbidden(
                "`pair` is for web pages; local programs are trusted by uid (use `origins.pair` to pair an origin)"
                    .into(),
            ));
        };
        let p: PairParams = parse_params(params)?;
        let wanted: BTreeSet<Grant> = p.grants.unwrap_or_else(|| vec![Grant::Sign]).into_iter().collect();
        if wanted.is_empty() {
            return Err(AgentError::InvalidParams("ask for at least one grant (\"sign\" or \"enroll\")".into()));
        }
        let held = self.origins.grants(origin);
        if wanted.is_subset(&held) {
            return Ok(json!({ "origin": origin, "paired": true, "grants": held }));
        }
        let mut all = held.clone();
        all.extend(wanted.iter().copied());
        let yes = self.consent.confirm_pairing(origin, &all, || wanted.is_subset(&self.origins.grants(origin))).await?;
        if !yes {
            log::info!("the holder refused to pair {origin}");
            return Err(AgentError::Carrier(ukey_api::Error::Cancelled));
        }
        let entry = self.origins.pair(origin, &all)?;
        log::info!("origin {origin} paired with grants {:?}", entry.grants);
        Ok(json!({ "origin": origin, "paired": true, "grants": entry.grants }))
    }
}
