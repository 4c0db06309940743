//! Two holders logged in at once, each with their own real `ukey agent`: root's and `nobody`'s
//! (run through setpriv). The first agent takes the first port of the range; the second finds it
//! held by another account and takes the next one, says so, and publishes the port it got where
//! its own account's clients read it (`agent.json`, `ukey agent status`). Each account's client
//! reaches its own agent and is refused by the other's (403 naming both uids). A port held by a
//! program of the agent's own account stops it with what to do instead of moving on.
//!
//! The JavaScript client's discovery across the range is tested in a real browser and in Node run
//! as `nobody` (tests/browser/ports.test.mjs, run by scripts/suites/50-browser.sh).
//!
//! Needs root (a second account through setpriv), as CI runs it; `curl` for the other account's
//! HTTP client.

mod agent_support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use agent_support::{DEADLINE, ukey_bin};
use serde_json::{Value, json};

const NOBODY: u32 = 65534;

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs a second account's agent through setpriv and needs root; run the tests as root, as CI does \
         (scripts/test-all)"
    );
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `n` consecutive loopback ports free right now.
fn free_range(n: u16) -> u16 {
    for _ in 0..100 {
        let base = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0);
        if base == 0 || base.checked_add(n).is_none() {
            continue;
        }
        let held: Vec<_> = (base..base + n).map_while(|p| TcpListener::bind(("127.0.0.1", p)).ok()).collect();
        if held.len() == usize::from(n) {
            return base;
        }
    }
    panic!("no {n} consecutive free loopback ports");
}

/// One account's home: its own directories, owned by it.
struct Home {
    dir: PathBuf,
    uid: u32,
}

impl Home {
    fn new(parent: &Path, name: &str, uid: u32) -> Home {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        Home { dir, uid }
    }

    /// A `ukey` command run as this account (through setpriv for another account), with its
    /// private runtime, data, config and state directories.
    fn ukey(&self) -> Command {
        let mut cmd = if self.uid == 0 {
            Command::new(ukey_bin())
        } else {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={}", self.uid),
                format!("--regid={}", self.uid),
                "--clear-groups".into(),
                "--".into(),
            ])
            .arg(ukey_bin());
            c
        };
        let d = &self.dir;
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", d)
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_STATE_HOME", d.join("state"))
            .env("UKEY_SOFT_DIR", d.join("soft"))
            .env("UKEY_SYSTEM_DIR", d.join("system"))
            .env("UKEY_DRIVERS", "soft");
        cmd
    }

    fn status_file(&self) -> Value {
        let path = self.dir.join("run/ukey/agent.json");
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .expect("agent.json is JSON")
    }
}

/// A running agent and what it logged.
struct Agent {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Agent {
    /// Starts `ukey agent --port BASE --port-range N` as `home`'s account; `Err(log)` when it
    /// exits instead of listening.
    fn start(home: &Home, base: u16, range: u16) -> Result<Agent, String> {
        let mut child = home
            .ukey()
            .args(["agent", "-vv", "--dev", "--port", &base.to_string(), "--port-range", &range.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ukey agent (setpriv is in util-linux)");
        let log = Arc::new(Mutex::new(String::new()));
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let sink = Arc::clone(&log);
        let stderr_copier = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // The first line says where it listens; dropping the sender at EOF reports an exit.
            if let Some(Ok(line)) = BufReader::new(stdout).lines().next() {
                let _ = tx.send(line);
            }
        });
        let line = match rx.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // It exited: its whole stderr is copied once the copier reaches end of file.
                let _ = child.wait();
                let _ = stderr_copier.join();
                return Err(log.lock().map(|l| l.clone()).unwrap_or_default());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the agent did not report it listens within {DEADLINE:?}");
            }
        };
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.trim_end_matches('/').parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Ok(Agent { child, port, log })
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /` on the agent's port as `uid` (curl, run as that account): the status line and body.
fn get_as(uid: u32, port: u16) -> String {
    let curl = Path::new("/usr/bin/curl");
    assert!(curl.exists(), "this test needs curl: apt-get install curl");
    let mut cmd = Command::new("setpriv");
    cmd.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into(), "--".into()])
        .arg(curl)
        .args(["-s", "-i", "--max-time", "20"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .env_clear()
        .env("HOME", "/tmp");
    let out = cmd.output().expect("run curl through setpriv");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn two_accounts_each_reach_their_own_agent_on_the_port_range() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (root, nobody) = (Home::new(tmp.path(), "root", 0), Home::new(tmp.path(), "nobody", NOBODY));
    let base = free_range(3);

    // nobody logged in first: its agent takes the first port of the range.
    let theirs = Agent::start(&nobody, base, 3).unwrap_or_else(|log| panic!("nobody's agent did not start:\n{log}"));
    assert_eq!(theirs.port, base, "{}", theirs.log());

    // root's agent finds the port held by another account and takes the next one, and says so.
    let ours = Agent::start(&root, base, 3).unwrap_or_else(|log| panic!("root's agent did not start:\n{log}"));
    assert_eq!(ours.port, base + 1, "{}", ours.log());
    assert!(
        ours.log()
            .contains(&format!("port {base} is held by another account's program ({base} by nobody (uid {NOBODY}))")),
        "the agent says why it moved: {}",
        ours.log()
    );

    // Each publishes the port it got where its own account's clients look.
    assert_eq!(root.status_file()["port"], json!(base + 1));
    assert_eq!(nobody.status_file()["port"], json!(base));
    for (home, port) in [(&root, base + 1), (&nobody, base)] {
        let out = home.ukey().args(["agent", "status", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let st: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        assert_eq!(st["port"], json!(port), "uid {}: {}", home.uid, text(&out));
    }

    // Each account's client reaches its own agent and is refused by the other's, naming both uids.
    let own = get_as(0, ours.port);
    assert!(own.starts_with("HTTP/1.1 200"), "root reaches its own agent: {own}");
    let other = get_as(0, theirs.port);
    assert!(other.starts_with("HTTP/1.1 403"), "root is refused by nobody's agent: {other}");
    assert!(other.contains(&format!("uid {NOBODY}")) && other.contains("from uid 0"), "{other}");
    let own = get_as(NOBODY, theirs.port);
    assert!(own.starts_with("HTTP/1.1 200"), "nobody reaches its own agent: {own}");
    let other = get_as(NOBODY, ours.port);
    assert!(other.starts_with("HTTP/1.1 403"), "nobody is refused by root's agent: {other}");
    assert!(other.contains("another account (uid 0)") && other.contains(&format!("from uid {NOBODY}")), "{other}");
}

#[test]
fn a_port_held_by_its_own_account_stops_the_agent_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let me = rustix::process::getuid().as_raw();
    let home = Home::new(tmp.path(), "me", me);
    let base = free_range(2);
    let _squatter = TcpListener::bind(("127.0.0.1", base)).unwrap();
    let log = match Agent::start(&home, base, 2) {
        Ok(agent) => panic!("the agent moved on to port {} past its own account's program", agent.port),
        Err(log) => log,
    };
    assert!(log.contains(&format!("port {base} is already used by a program of your own account")), "{log}");
    assert!(log.contains("--port"), "it says what to do: {log}");
}

#[test]
fn a_full_range_names_who_holds_each_port() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (root, nobody) = (Home::new(tmp.path(), "root", 0), Home::new(tmp.path(), "nobody", NOBODY));
    let base = free_range(1);
    let _theirs = Agent::start(&nobody, base, 1).unwrap_or_else(|log| panic!("nobody's agent did not start:\n{log}"));
    let log = match Agent::start(&root, base, 1) {
        Ok(agent) => panic!("root's agent shared or left the range: port {}", agent.port),
        Err(log) => log,
    };
    assert!(log.contains(&format!("every port of the agent range {base}-{base}")), "{log}");
    assert!(log.contains(&format!("{base} by nobody (uid {NOBODY})")), "{log}");
    assert!(log.contains("--port-range"), "it says what to do: {log}");
}
