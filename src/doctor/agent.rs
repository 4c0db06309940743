//! Is the holder's ukey agent running, does it answer on its socket (the question `ukey agent
//! status` asks), and are its runtime directory (0700) and socket (0600) the holder's own and
//! closed to other accounts? The agent also checks each peer's uid; the modes are the first wall.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::agent::client::{AgentClient, ClientError};
use crate::agent::instance;

use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "agent";

/// How long the agent may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The mode the agent gives its runtime directory, and its socket.
const DIR_MODE: u32 = 0o700;
const SOCKET_MODE: u32 = 0o600;

/// How to start the agent.
const START_HINT: &str = "start it: `ukey agent --detach` (web pages and desktop programs sign through it; the CLI \
     works without it)";

/// How to restart it.
const RESTART_HINT: &str =
    "restart it: `ukey agent stop`, then `ukey agent --detach`; its log is agent.log next to the socket";

/// Looks at the runtime directory and socket, then asks the agent for its status.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let dir = match instance::runtime_dir(env.agent_runtime_dir.as_deref()) {
        Ok(dir) => dir,
        Err(e) => {
            return vec![Finding::warn(
                ID,
                format!("the agent's place cannot be found: {e}"),
                "log in through a desktop or `ssh` session (it sets XDG_RUNTIME_DIR), or set `runtime_dir` in the \
                 [agent] section of the config file; then start the agent with `ukey agent --detach`",
            )];
        }
    };
    let socket = instance::socket_path(&dir);
    if !socket.exists() {
        return vec![Finding::warn(
            ID,
            format!("no ukey agent is running (no socket at {})", socket.display()),
            START_HINT,
        )];
    }
    let mut out = vec![answer(&socket)];
    out.extend(permissions(&dir, &socket));
    out
}

/// One finding per path whose owner or mode is wrong (none when both are right).
fn permissions(dir: &Path, socket: &Path) -> Vec<Finding> {
    let uid = rustix::process::getuid().as_raw();
    let mut out = Vec::new();
    for (path, expected, what) in [(dir, DIR_MODE, "runtime directory"), (socket, SOCKET_MODE, "socket")] {
        let subject = path.display().to_string();
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                out.push(
                    Finding::warn(ID, format!("the agent's {what} {subject} cannot be examined: {e}"), RESTART_HINT)
                        .about(subject),
                );
                continue;
            }
        };
        let mode = meta.permissions().mode() & 0o777;
        let problem = if meta.uid() != uid {
            format!("belongs to uid {}, not to you (uid {uid})", meta.uid())
        } else if mode & 0o077 != 0 {
            format!("has mode {mode:03o}, not {expected:03o}: other accounts may reach it")
        } else {
            continue;
        };
        out.push(
            Finding::fail(
                ID,
                format!("the agent's {what} {subject} {problem}"),
                format!(
                    "stop the agent (`ukey agent stop`), make sure {} is yours (XDG_RUNTIME_DIR should be your own \
                     /run/user/UID), and start it again with `ukey agent --detach`: it makes the directory \
                     {DIR_MODE:03o} and the socket {SOCKET_MODE:03o}",
                    dir.display()
                ),
            )
            .about(subject),
        );
    }
    out
}

/// Connects and asks for the agent's status.
fn answer(socket: &Path) -> Finding {
    let mut client = match AgentClient::connect(socket) {
        Ok(c) => c,
        Err(ClientError::NotRunning(_)) => {
            return Finding::warn(
                ID,
                format!("no ukey agent is running (nothing accepts connections on {})", socket.display()),
                START_HINT,
            );
        }
        Err(e) => {
            return Finding::fail(
                ID,
                format!("the ukey agent at {} cannot be reached: {e}", socket.display()),
                "stop it (`ukey agent stop`, or end its process) and start it again with `ukey agent --detach`; its log \
                 is agent.log next to the socket",
            );
        }
    };
    let _ = client.set_timeout(Some(ANSWER_TIMEOUT));
    match client.call("agent.status", json!({})) {
        Ok(st) => {
            let websocket = match st["port"].as_u64() {
                Some(p) => format!("WebSocket on 127.0.0.1:{p}"),
                None => "no WebSocket".into(),
            };
            Finding::ok(
                ID,
                format!(
                    "ukey agent {} is running (pid {}), socket {}, {websocket}",
                    st["version"].as_str().unwrap_or("?"),
                    st["pid"],
                    socket.display()
                ),
            )
        }
        Err(e) => Finding::fail(
            ID,
            format!("the ukey agent at {} does not answer its status request: {e}", socket.display()),
            RESTART_HINT,
        ),
    }
}
