//! Running as a service: socket activation of the Unix socket (driven by systemd's own
//! `systemd-socket-activate`, which passes the listening socket exactly as a socket unit does),
//! and `ukey agent install|uninstall` writing the XDG autostart entry.

mod agent_support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_support::{DEADLINE, pinentry_bin, ukey_bin};
use serde_json::json;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_agent_adopts_a_socket_passed_by_systemd() {
    let activate = "/usr/bin/systemd-socket-activate";
    assert!(
        std::path::Path::new(activate).exists(),
        "{activate} is missing: install the `systemd` package (scripts/apt-packages.txt lists it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    let ukey_dir = runtime.join("ukey");
    std::fs::create_dir_all(&ukey_dir).unwrap();
    std::fs::set_permissions(&ukey_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let sock = ukey_dir.join("agent.sock");
    let script = dir.path().join("script");
    std::fs::write(&script, "").unwrap();
    // Like a systemd user manager, pass the session's environment to the service explicitly.
    let mut cmd = Command::new(activate);
    for var in ["XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "UKEY_SOFT_DIR", "HOME"] {
        cmd.arg(format!("--setenv={var}"));
    }
    let child = cmd
        .arg("-l")
        .arg(&sock)
        .arg(ukey_bin())
        .args(["agent", "--port", "0", "-vv", "--pinentry"])
        .arg(pinentry_bin())
        .arg("--pinentry-arg=--script")
        .arg(format!("--pinentry-arg={}", script.display()))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("UKEY_SOFT_DIR", dir.path().join("soft"))
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = Kill(child);
    let until = Instant::now() + DEADLINE;
    while !sock.exists() {
        assert!(Instant::now() < until, "systemd-socket-activate did not create the socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The first connection starts the agent, which answers on the passed socket.
    let mut c = ukey::agent::client::AgentClient::connect(&sock).expect("the activated agent answers");
    let st = c.call("agent.status", json!({})).unwrap();
    assert_eq!(st["socket"], sock.to_str().unwrap());
    assert!(st["port"].as_u64().is_some(), "the WebSocket is served too");
    c.call("agent.shutdown", json!({})).unwrap();
    // The socket belongs to the activator: the agent leaves it in place.
    let status = ukey::agent::instance::read_status(&ukey_dir);
    let until = Instant::now() + DEADLINE;
    while ukey::agent::instance::read_status(&ukey_dir).is_some() {
        assert!(Instant::now() < until, "the agent did not stop: {status:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(sock.exists(), "the activated socket is not removed by the agent");
}

#[test]
fn install_writes_an_autostart_entry_and_uninstall_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(ukey_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .output()
            .unwrap()
    };
    let out = run(&["agent", "install", "--autostart"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entry = dir.path().join("config/autostart/ukey-agent.desktop");
    let text = std::fs::read_to_string(&entry).unwrap();
    let exe = ukey_bin().canonicalize().unwrap();
    assert!(text.contains(&format!("Exec={} agent --detach", exe.display())), "{text}");
    assert!(text.starts_with("[Desktop Entry]"));
    let out = run(&["agent", "uninstall"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!entry.exists());
}
