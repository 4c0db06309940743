//! The agent's settings: port, development origins, pinentry program, optional PIN cache and the
//! limits that keep a slow or hostile client from stalling the agent.
//!
//! Deserialisable so the `[agent]` table of the ukey configuration file maps onto it; every field
//! has a safe default, so an empty table (or none) gives a working agent.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The WebSocket port when none is configured. Fixed, so pages know where to connect.
pub const DEFAULT_PORT: u16 = 24815;

/// Everything the agent can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// WebSocket and demo-page port on 127.0.0.1 and ::1 (0 picks a free port, for tests).
    pub port: u16,
    /// How many ports, from `port` on, the agent may take when the port is held by another
    /// account's agent (two holders logged in at once); pages search the same range
    /// (see `crate::agent::ports`). 1: only `port`.
    pub port_range: u16,
    /// Serve the WebSocket at all (the Unix socket is always served).
    pub websocket: bool,
    /// Directory of the socket, lock and status file; default `$XDG_RUNTIME_DIR/ukey`.
    pub runtime_dir: Option<PathBuf>,
    /// Directory of the paired-origin store; default `$XDG_DATA_HOME/ukey`.
    pub data_dir: Option<PathBuf>,
    /// `http://` origins on a loopback host that may pair, for developing a web application
    /// (e.g. `http://localhost:8080`). https origins need no listing.
    pub dev_origins: Vec<String>,
    /// Development mode: every `http://` origin on a loopback host may pair.
    pub allow_http_loopback: bool,
    /// The PIN and confirmation dialog program.
    pub pinentry: PinentrySettings,
    /// Optional PIN cache per (client, key); off (`None`) by default.
    pub pin_cache: Option<PinCacheSettings>,
    /// Size, count and time limits.
    pub limits: Limits,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            port: DEFAULT_PORT,
            port_range: crate::agent::ports::DEFAULT_PORT_RANGE,
            websocket: true,
            runtime_dir: None,
            data_dir: None,
            dev_origins: Vec::new(),
            allow_http_loopback: false,
            pinentry: PinentrySettings::default(),
            pin_cache: None,
            limits: Limits::default(),
        }
    }
}

/// Which pinentry to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PinentrySettings {
    /// Program name or path (`pinentry`, `pinentry-gnome3`, `pinentry-curses`, ...).
    pub program: PathBuf,
    /// Extra arguments.
    pub args: Vec<String>,
    /// Seconds a dialog stays open before it counts as cancelled.
    pub timeout_secs: u64,
}

impl Default for PinentrySettings {
    fn default() -> Self {
        PinentrySettings { program: PathBuf::from("pinentry"), args: Vec::new(), timeout_secs: 60 }
    }
}

/// The optional PIN cache: a PIN entered for one key by one client is reused for at most
/// `seconds` and `uses`, and wiped when the carrier is removed or the agent stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinCacheSettings {
    /// Lifetime of a cached PIN, from entry.
    pub seconds: u64,
    /// Number of operations it may serve after the one it was entered for.
    pub uses: u32,
}

/// Bounds on what one client can make the agent do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest JSON-RPC message (a Unix-socket line or a WebSocket message), bytes.
    pub max_message: usize,
    /// Largest WebSocket frame, bytes.
    pub max_frame: usize,
    /// Most requests in one batch.
    pub max_batch: usize,
    /// Most requests one connection may have in flight.
    pub max_in_flight: usize,
    /// Most WebSocket connections at once.
    pub max_websocket_connections: usize,
    /// Most Unix-socket connections at once.
    pub max_unix_connections: usize,
    /// Most requests waiting for one carrier.
    pub carrier_queue_depth: usize,
    /// Seconds a request waits for its carrier before it fails as busy.
    pub carrier_queue_timeout_secs: u64,
    /// Seconds one request may take in all (PIN entry included).
    pub request_timeout_secs: u64,
    /// Seconds a WebSocket may stay silent (pongs count) before it is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a client has to send its HTTP request head.
    pub handshake_timeout_secs: u64,
    /// Most events buffered for one subscriber before it is told it missed some.
    pub event_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 4 * 1024 * 1024,
            max_frame: 1024 * 1024,
            max_batch: 16,
            max_in_flight: 32,
            max_websocket_connections: 4096,
            max_unix_connections: 1024,
            carrier_queue_depth: 256,
            carrier_queue_timeout_secs: 60,
            request_timeout_secs: 300,
            idle_timeout_secs: 120,
            handshake_timeout_secs: 10,
            event_buffer: 64,
        }
    }
}

impl Limits {
    /// [`Limits::carrier_queue_timeout_secs`] as a duration.
    pub fn carrier_queue_timeout(&self) -> Duration {
        Duration::from_secs(self.carrier_queue_timeout_secs)
    }

    /// [`Limits::request_timeout_secs`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// [`Limits::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// [`Limits::handshake_timeout_secs`] as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_gives_defaults_and_unknown_keys_are_refused() {
        let s: AgentSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, AgentSettings::default());
        assert!(serde_json::from_str::<AgentSettings>(r#"{"prot": 1}"#).is_err());
        let s: AgentSettings = serde_json::from_str(r#"{"pin_cache": {"seconds": 60, "uses": 10}}"#).unwrap();
        assert_eq!(s.pin_cache, Some(PinCacheSettings { seconds: 60, uses: 10 }));
    }
}
