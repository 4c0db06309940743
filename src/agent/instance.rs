//! One agent per user: the private runtime directory, the instance lock, the stale-socket
//! clean-up and the status file that `ukey agent status` and clients read.
//!
//! The lock (an `flock` on `agent.lock`) is what makes the agent single; the socket and status
//! file are only trusted when the lock is held. So a socket left by a crashed agent is removed
//! safely: whoever holds the lock knows no agent is behind it. The directory is checked to be
//! ours, not a symlink, and closed to others (0700) before anything is created in it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use ukey_api::Error;

/// File names inside the runtime directory.
pub const SOCKET_NAME: &str = "agent.sock";
const LOCK_NAME: &str = "agent.lock";
const STATUS_NAME: &str = "agent.json";

/// Where the running agent can be reached; written once it listens, removed when it stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Process id.
    pub pid: u32,
    /// The Unix socket.
    pub socket: PathBuf,
    /// WebSocket port, if the WebSocket is served.
    pub port: Option<u16>,
    /// ukey version.
    pub version: String,
    /// Start time, seconds since the Unix epoch.
    pub started: u64,
}

/// The per-user runtime directory: `$XDG_RUNTIME_DIR/ukey`, or the override.
pub fn runtime_dir(configured: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(dir) = configured {
        return Ok(dir.to_path_buf());
    }
    if let Some(base) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(base).join("ukey"));
    }
    let fallback = PathBuf::from(format!("/run/user/{}", rustix::process::getuid().as_raw()));
    if fallback.is_dir() {
        return Ok(fallback.join("ukey"));
    }
    Err(Error::NotFound(
        "no per-user runtime directory: XDG_RUNTIME_DIR is not set and /run/user/UID does not exist; \
         set XDG_RUNTIME_DIR (your login session normally does) or `runtime_dir` in the [agent] config"
            .into(),
    ))
}

/// The socket path inside a runtime directory.
pub fn socket_path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(SOCKET_NAME)
}

/// Creates the directory (0700) if needed and checks it is a real directory owned by us and closed
/// to everyone else; tightens its mode if it is ours but too open.
pub fn ensure_private_dir(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| Error::io(format!("inspecting {}", dir.display()), e))?;
    if !meta.file_type().is_dir() {
        return Err(Error::PermissionDenied(format!(
            "{} is not a directory (a symlink or file is in the way); remove it and start the agent again",
            dir.display()
        )));
    }
    let uid = rustix::process::getuid().as_raw();
    if meta.uid() != uid {
        return Err(Error::PermissionDenied(format!(
            "{} belongs to uid {}, not to you (uid {uid}); the agent will not use it",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("closing {} to other users", dir.display()), e))?;
    }
    Ok(())
}

/// The held instance lock; dropping it lets another agent start.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    dir: PathBuf,
}

impl InstanceLock {
    /// Takes the lock, or says where the running agent is.
    pub fn acquire(dir: &Path) -> Result<Self, Error> {
        ensure_private_dir(dir)?;
        let path = dir.join(LOCK_NAME);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(InstanceLock { _file: file, dir: dir.to_path_buf() }),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let whereabouts = match read_status(dir) {
                    Some(s) => format!(
                        "pid {}, socket {}{}",
                        s.pid,
                        s.socket.display(),
                        s.port.map(|p| format!(", port {p}")).unwrap_or_default()
                    ),
                    None => format!("starting up, runtime directory {}", dir.display()),
                };
                Err(Error::Busy(format!("a ukey agent is already running for this user ({whereabouts})")))
            }
            Err(e) => Err(Error::io(format!("locking {}", path.display()), e.into())),
        }
    }

    /// Removes a socket left by an agent that died, after checking it is a socket we own.
    /// Only safe while the lock is held, which `&self` proves.
    pub fn remove_stale_socket(&self, socket: &Path) -> Result<(), Error> {
        let meta = match fs::symlink_metadata(socket) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("inspecting {}", socket.display()), e)),
        };
        let uid = rustix::process::getuid().as_raw();
        if !meta.file_type().is_socket() || meta.uid() != uid {
            return Err(Error::PermissionDenied(format!(
                "{} exists and is not a socket of yours; remove it by hand and start the agent again",
                socket.display()
            )));
        }
        log::info!("removing the stale socket {} left by an agent that stopped", socket.display());
        fs::remove_file(socket).map_err(|e| Error::io(format!("removing stale socket {}", socket.display()), e))
    }

    /// Publishes where the agent listens (atomically, mode 0600).
    pub fn write_status(&self, status: &AgentStatus) -> Result<(), Error> {
        let path = self.dir.join(STATUS_NAME);
        let tmp = self.dir.join(format!("{STATUS_NAME}.tmp"));
        let text = serde_json::to_vec_pretty(status).map_err(|e| Error::Device(e.to_string()))?;
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        f.write_all(&text).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(format!("publishing {}", path.display()), e))
    }

    /// Removes the status file (and the socket, unless systemd owns it) at shutdown.
    pub fn clean_up(&self, socket: Option<&Path>) {
        let _ = fs::remove_file(self.dir.join(STATUS_NAME));
        if let Some(s) = socket {
            let _ = fs::remove_file(s);
        }
    }
}

/// Reads the status file of the running agent, if there is one.
pub fn read_status(dir: &Path) -> Option<AgentStatus> {
    let text = fs::read(dir.join(STATUS_NAME)).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_says_where_the_first_agent_is() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ukey");
        let lock = InstanceLock::acquire(&dir).unwrap();
        let status =
            AgentStatus { pid: 4242, socket: socket_path(&dir), port: Some(1234), version: "0".into(), started: 0 };
        lock.write_status(&status).unwrap();
        let err = InstanceLock::acquire(&dir).unwrap_err().to_string();
        assert!(err.contains("pid 4242") && err.contains("port 1234"), "{err}");
        drop(lock);
        InstanceLock::acquire(&dir).unwrap();
    }

    #[test]
    fn directory_is_closed_to_others() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ukey");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_file_in_place_of_the_socket_is_not_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ukey");
        let lock = InstanceLock::acquire(&dir).unwrap();
        let sock = socket_path(&dir);
        fs::write(&sock, b"precious").unwrap();
        assert!(lock.remove_stale_socket(&sock).is_err());
        assert_eq!(fs::read(&sock).unwrap(), b"precious");
        fs::remove_file(&sock).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        drop(listener);
        lock.remove_stale_socket(&sock).unwrap();
        assert!(!sock.exists());
    }

    #[test]
    fn a_symlinked_runtime_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("ukey");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(ensure_private_dir(&link).is_err());
    }
}
