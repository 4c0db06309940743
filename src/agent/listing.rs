//! `tokens.list`, `certs.list` and `keys.list`: what is present, read through each carrier's
//! queue, all carriers at once so a slow one does not delay the answer for the others longer
//! than it takes itself.

use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use ukey_api::CarrierId;

use crate::agent::carriers::CarrierSlot;
use crate::agent::error::AgentResult;
use crate::agent::service::{Service, parse_params};
use crate::agent::views::{CertView, KeyView, TokenView};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Limit to one carrier.
    #[serde(default)]
    token: Option<String>,
}

impl Service {
    /// Every present carrier with its PIN state.
    pub(crate) async fn tokens_list(&self) -> AgentResult<Value> {
        let slots = self.carriers.list();
        let views = join_all(slots.iter().map(|slot| async move {
            let pin = match slot.run(|c| c.pin_state()).await {
                Ok(p) => Some(p),
                Err(e) => {
                    log::debug!("PIN state of {} unavailable: {e}", slot.info().id);
                    None
                }
            };
            TokenView::new(slot.info(), pin)
        }))
        .await;
        // Drivers still starting (or that failed to) are named, so an empty list is explained.
        let drivers = self.carriers.driver_reports().await;
        Ok(json!({ "tokens": views, "drivers": drivers }))
    }

    /// Certificates of every carrier (or one), each with its handle.
    pub(crate) async fn certs_list(&self, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: ListParams = parse_params(params)?;
        let slots = self.selected(p.token.as_deref())?;
        let lists = join_all(slots.iter().map(|slot| async move {
            let objects = slot.objects().await?;
            Ok::<_, ukey_api::Error>(
                objects
                    .certificates
                    .iter()
                    .map(|c| CertView::new(slot.info(), c, objects.key_for(&c.id)))
                    .collect::<Vec<_>>(),
            )
        }))
        .await;
        let mut certs = Vec::new();
        let mut problems = Vec::new();
        for (slot, list) in slots.iter().zip(lists) {
            match list {
                Ok(mut l) => certs.append(&mut l),
                Err(e) => problems.push(json!({ "token": slot.info().id, "kind": e.kind(), "message": e.to_string() })),
            }
        }
        Ok(json!({ "certificates": certs, "problems": problems }))
    }

    /// Private keys of every carrier (or one), with handles (Unix socket only).
    pub(crate) async fn keys_list(&self, params: Option<&RawValue>) -> AgentResult<Value> {
        let p: ListParams = parse_params(params)?;
        let slots = self.selected(p.token.as_deref())?;
        let lists = join_all(slots.iter().map(|slot| async move {
            let objects = slot.objects().await?;
            Ok::<_, ukey_api::Error>(objects.keys.iter().map(|k| KeyView::new(slot.info(), k)).collect::<Vec<_>>())
        }))
        .await;
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        for (slot, list) in slots.iter().zip(lists) {
            match list {
                Ok(mut l) => keys.append(&mut l),
                Err(e) => problems.push(json!({ "token": slot.info().id, "kind": e.kind(), "message": e.to_string() })),
            }
        }
        Ok(json!({ "keys": keys, "problems": problems }))
    }

    fn selected(&self, token: Option<&str>) -> AgentResult<Vec<std::sync::Arc<CarrierSlot>>> {
        Ok(match token {
            Some(id) => vec![self.carriers.get(&CarrierId::from_string(id))?],
            None => self.carriers.list(),
        })
    }
}
