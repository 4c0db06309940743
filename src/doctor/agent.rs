//! Is the holder's ukey agent running, and does it answer on its socket? (The same question
//! `ukey agent status` asks.)

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::agent::client::{AgentClient, ClientError};
use crate::agent::instance;

use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "agent";

/// How long the agent may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How to start the agent.
const START_HINT: &str = "start it: `ukey agent --detach` (web pages and desktop programs sign through it; the CLI \
     works without it)";

/// Connects and asks for the agent's status.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let dir = match instance::runtime_dir(env.agent_runtime_dir.as_deref()) {
        Ok(dir) => dir,
        Err(e) => return vec![Finding::warn(ID, format!("the agent's place cannot be found: {e}"), START_HINT)],
    };
    let socket: PathBuf = instance::socket_path(&dir);
    if !socket.exists() {
        return vec![Finding::warn(
            ID,
            format!("no ukey agent is running (no socket at {})", socket.display()),
            START_HINT,
        )];
    }
    let mut client = match AgentClient::connect(&socket) {
        Ok(c) => c,
        Err(ClientError::NotRunning(_)) => {
            return vec![Finding::warn(
                ID,
                format!("no ukey agent is running (nothing accepts connections on {})", socket.display()),
                START_HINT,
            )];
        }
        Err(e) => {
            return vec![Finding::fail(
                ID,
                format!("the ukey agent at {} cannot be reached: {e}", socket.display()),
                "stop it (`ukey agent stop`, or end its process) and start it again with `ukey agent --detach`; its log \
                 is agent.log next to the socket",
            )];
        }
    };
    let _ = client.set_timeout(Some(ANSWER_TIMEOUT));
    match client.call("agent.status", json!({})) {
        Ok(st) => {
            let websocket = match st["port"].as_u64() {
                Some(p) => format!("WebSocket on 127.0.0.1:{p}"),
                None => "no WebSocket".into(),
            };
            vec![Finding::ok(
                ID,
                format!(
                    "ukey agent {} is running (pid {}), socket {}, {websocket}",
                    st["version"].as_str().unwrap_or("?"),
                    st["pid"],
                    socket.display()
                ),
            )]
        }
        Err(e) => vec![Finding::fail(
            ID,
            format!("the ukey agent at {} does not answer its status request: {e}", socket.display()),
            "restart it: `ukey agent stop`, then `ukey agent --detach`; its log is agent.log next to the socket",
        )],
    }
}
