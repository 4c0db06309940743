//! Starting (and, for tests that need it, restarting) pcscd without systemd.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pcsc::{Context, Scope};

use super::HarnessError;
use super::locks::{LockFile, lock_dir};

/// pcscd's client socket.
pub const SOCKET: &str = "/run/pcscd/pcscd.comm";
/// pcscd's pid file.
pub const PID_FILE: &str = "/run/pcscd/pcscd.pid";
/// How long pcscd may take to come up.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How often readiness is polled while waiting for the deadline.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Lock taken around "is pcscd running? if not, start it", so two test binaries never both
/// start one.
const START_LOCK: &str = "pcscd-start.lock";
/// Pid of the pcscd the harness started (only that one may be stopped by a test).
const HARNESS_PID: &str = "pcscd-harness.pid";

/// Makes sure pcscd runs and answers: starts `pcscd --foreground` detached when its socket is
/// absent or dead, then waits (bounded) until a PC/SC context can be established.
pub fn ensure_running() -> Result<(), HarnessError> {
    let dir = lock_dir();
    let _start = LockFile::acquire(&dir.join(START_LOCK), true, START_TIMEOUT)?;
    if answers() {
        return Ok(());
    }
    start(&dir)?;
    wait_until(START_TIMEOUT, answers).map_err(|_| HarnessError::PcscdNotReady {
        socket: SOCKET.to_string(),
        timeout: START_TIMEOUT,
        log: dir.join("pcscd.log").display().to_string(),
    })
}

/// Whether pcscd accepts a client now.
pub fn answers() -> bool {
    Path::new(SOCKET).exists() && Context::establish(Scope::User).is_ok()
}

fn start(dir: &Path) -> Result<(), HarnessError> {
    let _ = fs::create_dir_all("/run/pcscd");
    let log_path = dir.join("pcscd.log");
    let log = fs::File::create(&log_path).map_err(|e| HarnessError::Io(log_path.display().to_string(), e))?;
    let log_err = log.try_clone().map_err(|e| HarnessError::Io(log_path.display().to_string(), e))?;
    let child = Command::new("pcscd")
        .arg("--foreground")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: Ctrl-C on a test run or the end of a test binary leaves the
        // shared daemon running for the other binaries.
        .process_group(0)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HarnessError::PcscdMissing,
            _ => HarnessError::Io("pcscd".to_string(), e),
        })?;
    log::info!("started pcscd (pid {})", child.id());
    let pid_path = dir.join(HARNESS_PID);
    fs::write(&pid_path, child.id().to_string()).map_err(|e| HarnessError::Io(pid_path.display().to_string(), e))?;
    Ok(())
}

/// Stops pcscd, if the harness started it, and waits until it is gone. Needs the exclusive pcscd
/// lock, which [`super::ReaderLease::stop_pcscd`] holds.
pub(super) fn stop() -> Result<(), HarnessError> {
    end(rustix::process::Signal::TERM)
}

/// Kills pcscd (SIGKILL: no cleanup, as a crash or the OOM killer would), if the harness started
/// it, and waits until the process is gone. Its socket file stays behind, stale, as after a real
/// crash; [`ensure_running`] starts a new daemon over it. Needs the exclusive pcscd lock.
pub(super) fn kill() -> Result<(), HarnessError> {
    end(rustix::process::Signal::KILL)
}

fn end(signal: rustix::process::Signal) -> Result<(), HarnessError> {
    let graceful = signal == rustix::process::Signal::TERM;
    let dir = lock_dir();
    let _start = LockFile::acquire(&dir.join(START_LOCK), true, START_TIMEOUT)?;
    let Some(pid) = running_pid() else {
        return Ok(());
    };
    let ours = fs::read_to_string(dir.join(HARNESS_PID)).ok().and_then(|s| s.trim().parse::<i32>().ok());
    if ours != Some(pid) {
        return Err(HarnessError::ForeignPcscd(pid));
    }
    let target = rustix::process::Pid::from_raw(pid).ok_or(HarnessError::ForeignPcscd(pid))?;
    rustix::process::kill_process(target, signal)
        .map_err(|e| HarnessError::Io(format!("kill pcscd {pid}"), e.into()))?;
    let gone = wait_until(START_TIMEOUT, || (!graceful || !Path::new(SOCKET).exists()) && !process_alive(pid));
    if !graceful && gone.is_ok() {
        clean_after_crash(target);
    }
    gone.map_err(|_| HarnessError::PcscdNotReady {
        socket: SOCKET.to_string(),
        timeout: START_TIMEOUT,
        log: dir.join("pcscd.log").display().to_string(),
    })
}

/// Clears what a killed pcscd leaves: its zombie, when this process started it (a new pcscd
/// takes a zombie's pid file for a running daemon and refuses to start), and its stale socket
/// and pid file (a new pcscd refuses a socket file without a pid file it can check).
fn clean_after_crash(pid: rustix::process::Pid) {
    // Not our child (another test binary started it): its parent or init reaps it.
    let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
    for stale in [SOCKET, PID_FILE] {
        if let Err(e) = fs::remove_file(stale)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("removing {stale} left by the killed pcscd: {e}");
        }
    }
}

/// The pid in pcscd's pid file, when that process is alive.
pub fn running_pid() -> Option<i32> {
    let pid = fs::read_to_string(PID_FILE)
        .ok()?
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .parse::<i32>()
        .ok()?;
    process_alive(pid).then_some(pid)
}

fn process_alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped by its parent) counts as gone.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls `ready` until it holds or `timeout` passes.
pub(super) fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(());
        }
        std::thread::sleep(POLL_EVERY);
    }
}
