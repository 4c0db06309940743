//! Hot-plug and certificate-change events, fanned out to every subscribed client.
//!
//! A tokio broadcast channel: publishing never waits for a subscriber, and a subscriber that
//! falls behind by more than the buffer is told how many events it missed (`events.lagged`)
//! instead of holding the others up.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::agent::views::TokenView;

/// Buffered events per hub before slow subscribers start missing some.
const HUB_CAPACITY: usize = 256;

/// One event as clients see it (`params.event` of an `events.event` notification).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum AgentEvent {
    /// A carrier was inserted (or found at start-up).
    #[serde(rename = "carrier.inserted")]
    Inserted {
        /// The carrier.
        token: Box<TokenView>,
    },
    /// A carrier was removed.
    #[serde(rename = "carrier.removed")]
    Removed {
        /// Its id.
        token: String,
    },
    /// Certificates or keys on a carrier changed.
    #[serde(rename = "certs.changed")]
    CertsChanged {
        /// Its id.
        token: String,
    },
}

/// The fan-out point.
#[derive(Debug, Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<AgentEvent>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub with the default buffer.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(HUB_CAPACITY);
        EventHub { tx }
    }

    /// Sends an event to every current subscriber.
    pub fn publish(&self, event: AgentEvent) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new subscription, receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AgentEvent>> {
        self.tx.subscribe()
    }

    /// Current number of subscriptions.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}
