//! SIGKILL of the `ukey` CLI at varying points of the operations that write a soft token: key
//! generation, certificate import and PIN change. Afterwards the token must always open and verify
//! (its file decodes under its checksum), hold either the old or the new state (never half of a
//! key pair, never a PIN that is neither the old nor the new one), and take the next operation.
//!
//! Kill points follow the process, not the clock: an inotify watch on the soft-token directory
//! reports each file event the operation causes (lock, temporary file created, written, closed,
//! renamed into place). A dry run counts the events of each operation; iteration `i` kills the
//! process right after event `i mod (events + 1)` (0: as soon as it started). The kill still
//! races the process a little, which varies the point further.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{Env, USER_PIN, openssl_ok};
use rustix::fs::inotify;

/// Kill iterations (spread over the three operations).
const ITERATIONS: usize = 30;
/// Longest wait for one event or for one operation to end.
const DEADLINE: Duration = Duration::from_secs(60);
const TOKEN: &str = "K";
const OTHER_PIN: &str = "other-pin-5150";

/// One message per file event in the watched directory.
fn watch(dir: &Path) -> Receiver<String> {
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC).expect("inotify_init");
    let flags = inotify::WatchFlags::CREATE
        | inotify::WatchFlags::MODIFY
        | inotify::WatchFlags::CLOSE_WRITE
        | inotify::WatchFlags::MOVED_TO
        | inotify::WatchFlags::DELETE;
    inotify::add_watch(&fd, dir, flags).expect("inotify_add_watch on the soft-token directory");
    let (tx, rx) = std::sync::mpsc::channel();
    // Blocks in read(2) for the rest of the test process; ends when the receiver is gone.
    std::thread::spawn(move || {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&fd, &mut buf);
        loop {
            let Ok(event) = reader.next() else { return };
            let name = event.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if tx.send(format!("{:?} {name}", event.events())).is_err() {
                return;
            }
        }
    });
    rx
}

fn drain(events: &Receiver<String>) {
    while events.try_recv().is_ok() {}
}

/// One operation under test.
#[derive(Clone, Copy, Debug)]
enum Op {
    Keygen,
    Import,
    PinChange,
}

struct Rig {
    env: Env,
    events: Receiver<String>,
    /// Certificates ready to import, one per key (`imp-N`), consumed as imports succeed.
    certificates: Vec<(String, PathBuf)>,
    pin: String,
}

impl Rig {
    fn command(&self, op: Op, n: usize) -> Child {
        let mut cmd = self.env.ukey();
        let other = if self.pin == USER_PIN { OTHER_PIN } else { USER_PIN };
        match op {
            Op::Keygen => {
                cmd.args(["--json", "keygen", "--token", TOKEN, "--alg", "p256", "--label", &format!("gen-{n}")]);
            }
            Op::Import => {
                let (_, cert) = self.certificates.last().expect("a certificate left to import");
                cmd.args(["--json", "cert", "import", "--token", TOKEN]).arg(cert);
            }
            Op::PinChange => {
                cmd.args(["--json", "pin", "change", "--token", TOKEN]).env("UKEY_NEW_PIN", other);
            }
        }
        cmd.env("UKEY_PIN", &self.pin).stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn().expect("start ukey")
    }

    /// The token's keys and certificates as `ukey --json keys` lists them; the listing fails
    /// when the token does not open.
    fn keys(&self) -> serde_json::Value {
        self.env.run_with(&["--json", "keys", "--token", TOKEN], &[("UKEY_PIN", &self.pin)], None).ok().json()
    }

    /// Whether `pin` is the token's user PIN (a signature with it succeeds).
    fn pin_works(&self, pin: &str) -> bool {
        let data = self.env.write("data.txt", b"probe");
        self.env
            .run_with(
                &[
                    "sign",
                    "--token",
                    TOKEN,
                    "--key",
                    "kept",
                    "--in",
                    data.to_str().expect("utf-8 path"),
                    "--out",
                    "probe.sig",
                ],
                &[("UKEY_PIN", pin)],
                None,
            )
            .code
            == 0
    }
}

fn labels(keys: &serde_json::Value) -> Vec<String> {
    let list = keys["keys"].as_array().or_else(|| keys.as_array()).cloned().unwrap_or_default();
    list.iter().filter_map(|k| k["label"].as_str().map(str::to_string)).collect()
}

fn certified(keys: &serde_json::Value) -> Vec<String> {
    let list = keys["keys"].as_array().or_else(|| keys.as_array()).cloned().unwrap_or_default();
    list.iter()
        .filter(|k| !k["certificate"].is_null())
        .filter_map(|k| k["label"].as_str().map(str::to_string))
        .collect()
}

/// Runs `op`, killing it right after file event `kill_after` (None: let it finish). Returns the
/// number of events seen and whether it was killed before it ended.
fn run_and_kill(rig: &Rig, op: Op, n: usize, kill_after: Option<usize>) -> (usize, bool) {
    drain(&rig.events);
    let mut child = rig.command(op, n);
    let started = Instant::now();
    let mut seen = 0;
    loop {
        if kill_after == Some(seen) {
            let _ = child.kill();
            let status = child.wait().expect("wait for ukey");
            return (seen, status.signal() == Some(9));
        }
        match rig.events.recv_timeout(Duration::from_millis(20)) {
            Ok(_) => seen += 1,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait().expect("poll ukey") {
                    // Count the events it caused before exiting.
                    while rig.events.try_recv().is_ok() {
                        seen += 1;
                    }
                    assert!(kill_after.is_some() || status.success(), "{op:?} failed without a kill ({status})");
                    return (seen, false);
                }
                assert!(started.elapsed() < DEADLINE, "{op:?} did not end within {DEADLINE:?}");
            }
            Err(RecvTimeoutError::Disconnected) => panic!("the inotify watcher stopped"),
        }
    }
}

#[test]
fn killing_keygen_import_and_pin_change_leaves_a_token_with_the_old_or_the_new_state() {
    let env = Env::new();
    env.create_token(TOKEN);
    std::fs::create_dir_all(env.soft_dir()).expect("soft dir");
    env.keygen(TOKEN, "p256", "kept");
    // Keys with a certificate each, ready to import.
    let mut certificates = Vec::new();
    let ca = env.path("ca.key");
    openssl_ok(
        env.dir.path(),
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"],
    );
    for i in 0..(ITERATIONS / 3 + 2) {
        let label = format!("imp-{i}");
        env.keygen(TOKEN, "p256", &label);
        let public = env.run(&["pubkey", "--token", TOKEN, "--key", &label]).ok().stdout;
        let public_path = env.write(&format!("{label}.pub.pem"), &public);
        let cert = env.path(&format!("{label}.pem"));
        openssl_ok(
            env.dir.path(),
            &[
                "x509",
                "-new",
                "-force_pubkey",
                public_path.to_str().expect("utf-8"),
                "-subj",
                &format!("/CN={label}"),
                "-key",
                ca.to_str().expect("utf-8"),
                "-days",
                "30",
                "-out",
                cert.to_str().expect("utf-8"),
            ],
        );
        certificates.push((label, cert));
    }
    let events = watch(&env.soft_dir());
    let mut rig = Rig { env, events, certificates, pin: USER_PIN.to_string() };

    // Dry runs: how many file events each operation causes.
    let mut event_counts = Vec::new();
    for (n, op) in [Op::Keygen, Op::Import, Op::PinChange].into_iter().enumerate() {
        let (count, _) = run_and_kill(&rig, op, 1000 + n, None);
        assert!(count > 0, "{op:?} wrote nothing to the soft-token directory");
        match op {
            Op::Import => {
                rig.certificates.pop();
            }
            Op::PinChange => rig.pin = OTHER_PIN.to_string(),
            Op::Keygen => {}
        }
        event_counts.push((op, count));
    }

    let mut killed = 0;
    for i in 0..ITERATIONS {
        let (op, count) = event_counts[i % 3];
        let kill_after = (i / 3) % (count + 1);
        let before = rig.keys();
        let (_, was_killed) = run_and_kill(&rig, op, i, Some(kill_after));
        killed += usize::from(was_killed);
        let case = format!("iteration {i}: {op:?} killed after file event {kill_after} of {count}");

        // The token opens (its file decodes and verifies) and lists its keys.
        let after = rig.keys();
        let (old, new) = (labels(&before), labels(&after));
        match op {
            Op::Keygen => {
                let label = format!("gen-{i}");
                let mut expected = old.clone();
                expected.push(label.clone());
                let (mut a, mut b) = (new.clone(), expected);
                a.sort();
                b.sort();
                assert!(new == old || a == b, "{case}: keys went from {old:?} to {new:?}");
            }
            Op::Import => {
                assert_eq!(new, old, "{case}: an import changed the keys");
                let (label, _) = rig.certificates.last().expect("certificate").clone();
                let (was, now) = (certified(&before), certified(&after));
                let mut with = was.clone();
                with.push(label.clone());
                let (mut a, mut b) = (now.clone(), with);
                a.sort();
                b.sort();
                assert!(now == was || a == b, "{case}: certificates went from {was:?} to {now:?}");
                if now != was {
                    rig.certificates.pop();
                }
            }
            Op::PinChange => {
                assert_eq!(new, old, "{case}: a PIN change changed the keys");
                let other = if rig.pin == USER_PIN { OTHER_PIN } else { USER_PIN };
                let (old_works, new_works) = (rig.pin_works(&rig.pin), rig.pin_works(other));
                assert!(old_works != new_works, "{case}: old PIN works: {old_works}, new PIN works: {new_works}");
                if new_works {
                    rig.pin = other.to_string();
                }
            }
        }
    }
    assert!(killed >= ITERATIONS / 2, "only {killed} of {ITERATIONS} runs were killed before they ended");

    // The token still takes every operation.
    let (count, _) = run_and_kill(&rig, Op::Keygen, 9999, None);
    assert!(count > 0);
    assert!(rig.pin_works(&rig.pin.clone()), "the token signs after {ITERATIONS} kills");
}
