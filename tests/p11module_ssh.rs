//! `ssh -I libukey_pkcs11.so` logs in to a real OpenSSH server: the test starts its own `sshd`
//! (own config, host key and AuthorizedKeysFile holding the carrier key's public key as
//! `ssh-keygen -D` prints it through the module) on a free loopback port, and `ssh` signs the
//! user-authentication challenge with the carrier's key through the agent (PIN from the agent's
//! scripted pinentry). With an RSA key, OpenSSH signs `rsa-sha2-512`/`-256` through
//! `CKM_RSA_PKCS` over a SHA-512/256 DigestInfo; with a P-256 key, `CKM_ECDSA`.
//!
//! sshd must run as root to authenticate a user (privilege separation); CI runs the tests as
//! root, so anything else is a failure that says so.

mod agent_support;
mod p11module_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use agent_support::{DEADLINE, TestAgent};
use p11module_support::*;
use ukey_api::KeyAlgorithm;

const SSHD: &str = "/usr/sbin/sshd";

/// A running `sshd` of this test, stopped when dropped; its log lines arrive on `log`.
struct Sshd {
    child: Child,
    port: u16,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Sshd {
    /// Starts sshd in `dir` accepting the keys in `authorized_keys`, and waits until it listens.
    fn start(dir: &Path, authorized_keys: &str) -> Sshd {
        assert!(Path::new(SSHD).is_file(), "{SSHD} is missing: install the Debian package `openssh-server`");
        assert!(
            rustix::process::geteuid().is_root(),
            "the ssh login test needs root (sshd's privilege separation); CI runs the tests as root"
        );
        // sshd refuses to start without its privilege-separation directory, which only the
        // service's start script creates.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let host_key = dir.join("host_ed25519");
        run_ok(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&host_key));
        let keys = write_file(dir, "authorized_keys", authorized_keys.as_bytes());
        // A port no one holds right now; sshd is told to use it and reports when it listens.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        let config = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             AuthenticationMethods publickey\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
             LogLevel VERBOSE\n",
            host_key.display(),
            keys.display(),
            dir.join("sshd.pid").display()
        );
        let config = write_file(dir, "sshd_config", config.as_bytes());
        let mut child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sshd");
        let stderr = child.stderr.take().expect("sshd stderr");
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut sshd = Sshd { child, port, log, seen: Vec::new() };
        sshd.wait_for(&format!("Server listening on 127.0.0.1 port {port}"));
        sshd
    }

    /// Everything sshd logged so far (for failure messages).
    fn drained(&mut self) -> String {
        while let Ok(line) = self.log.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    /// Waits (bounded) for a log line containing `needle` and returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("sshd never logged {needle:?}; its log:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The public keys `ssh-keygen -D` reads through the module, one `type base64 label` per line.
fn keys_through_module(agent: &TestAgent) -> Vec<String> {
    require("ssh-keygen", "openssh-client");
    let out = run_ok(client(agent, "ssh-keygen").arg("-D").arg(module_path()));
    stdout(&out).lines().map(str::to_string).filter(|l| l.starts_with("ssh-") || l.starts_with("ecdsa-")).collect()
}

fn current_user() -> String {
    let out = run_ok(Command::new("id").arg("-un"));
    stdout(&out).trim().to_string()
}

/// `ssh -I module -p PORT user@127.0.0.1 echo ...` with no other way to authenticate: the
/// identity is the carrier key's public half (with IdentitiesOnly, ssh uses a PKCS#11 key only
/// when it is named so), and no password or keyboard-interactive method is offered.
fn ssh_login(agent: &TestAgent, dir: &Path, port: u16, public_key: &str) -> std::process::Output {
    require("ssh", "openssh-client");
    let known_hosts: PathBuf = dir.join("known_hosts");
    let identity = write_file(dir, "carrier-key.pub", format!("{public_key}\n").as_bytes());
    client(agent, "ssh")
        .arg("-v")
        .arg("-F")
        .arg("/dev/null")
        .arg("-I")
        .arg(module_path())
        .args(["-p", &port.to_string()])
        // Not BatchMode: ssh would refuse any PKCS#11 login then. The token has a protected
        // authentication path, so ssh asks nothing itself; the agent's dialog takes the PIN.
        .arg("-i")
        .arg(&identity)
        .args(["-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no"])
        .args(["-o", "KbdInteractiveAuthentication=no", "-o", "StrictHostKeyChecking=no"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "ConnectTimeout=30"])
        .arg(format!("{}@127.0.0.1", current_user()))
        .arg("echo ukey-ssh-login-$((6*7))")
        .stdin(Stdio::null())
        .output()
        .expect("run ssh")
}

fn logs_in_with(algorithm: KeyAlgorithm, ssh_key_type: &str) {
    let (agent, _token) = agent_with_token(&[algorithm], &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = keys_through_module(&agent);
    assert_eq!(keys.len(), 1, "one carrier key: {keys:?}");
    assert!(keys[0].starts_with(ssh_key_type), "{keys:?}");
    let mut sshd = Sshd::start(dir.path(), &format!("{}\n", keys[0]));

    agent.script(&[&pin_line()]);
    let out = ssh_login(&agent, dir.path(), sshd.port, &keys[0]);
    let text = format!("{}\n{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout(&out).contains("ukey-ssh-login-42"),
        "ssh -I logs in ({}): {text}\nsshd:\n{}",
        out.status,
        sshd.drained()
    );
    let accepted = sshd.wait_for("Accepted publickey for");
    assert!(accepted.contains(&current_user()), "{accepted}");
    assert_eq!(agent.dialogs().len(), 1, "the holder answered one PIN dialog: {:?}", agent.dialogs());
    let log = agent.log();
    assert!(
        log.lines().any(|l| l.contains("use: ") && l.contains("bin/ssh (pid")),
        "the agent's gate recorded ssh's signature:\n{log}"
    );
}

#[test]
fn ssh_logs_in_with_a_p256_carrier_key() {
    logs_in_with(KeyAlgorithm::P256, "ecdsa-sha2-nistp256");
}

#[test]
fn ssh_logs_in_with_an_rsa_carrier_key() {
    logs_in_with(KeyAlgorithm::Rsa { bits: 2048 }, "ssh-rsa");
}

#[test]
fn ssh_is_refused_when_the_holder_cancels_the_pin_dialog() {
    let (agent, _token) = agent_with_token(&[KeyAlgorithm::P256], &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = keys_through_module(&agent);
    let sshd = Sshd::start(dir.path(), &format!("{}\n", keys.join("\n")));
    agent.script(&["cancel"]);
    let out = ssh_login(&agent, dir.path(), sshd.port, &keys[0]);
    assert!(!out.status.success(), "no login without the holder's PIN: {}", stdout(&out));
    assert!(!stdout(&out).contains("ukey-ssh-login-42"));
    assert_eq!(
        agent.dialogs().len(),
        1,
        "ssh reached the holder's PIN dialog, which was refused: {:?}",
        agent.dialogs()
    );
}
