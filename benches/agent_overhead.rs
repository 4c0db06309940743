//! Agent overhead: a P-256 signature over a prepared digest on the soft token, done in-process
//! (the driver called directly) and through the running agent over its Unix socket and its
//! WebSocket, in one run, interleaved in rounds so machine noise hits every path alike.
//!
//! The Unix-socket client supplies the PIN (as the CLI does with --pin-file); the WebSocket
//! client is a paired page and the agent runs with its optional PIN cache (time- and
//! use-bounded, here set large), so what is measured is the agent, not a human at pinentry.
//! Every path pays the soft token's own cost (file lock, Argon2 with the cheapest parameters,
//! two fsynced writes).
//!
//! What each path does:
//! - `in-process (driver)`: the carrier's `sign` alone — no custody check, no audit record;
//! - `in-process + gate`: the same plus the custody gate and its audit records (intent, and the
//!   outcome synced with `fdatasync`) in a log on the same file system as the agent's — the work
//!   every use must do wherever it runs (the CLI without an agent does it too), so the agent's
//!   own cost (IPC, JSON, scheduling) is the difference to this row;
//! - `agent, Unix socket` / `agent, WebSocket`: JSON-RPC through the agent, which runs the gate
//!   and audit itself.
//!
//! The agent runs at its normal verbosity (`-vv`, info: one line per use), not the tests'
//! `-vvv` debug log, so what is measured is the agent as a holder runs it.
//!
//! Goals (issue 5): added median latency <= 0.3 ms; agent throughput >= 0.8x in-process. The
//! report gives both against the bare driver and against the gated in-process path.
//! Run: `cargo bench -p ukey --bench agent_overhead -- [--seconds N]` (default 6 s per path).

#[path = "../tests/agent_support/mod.rs"]
mod agent_support;
#[path = "../tests/agent_support/soft.rs"]
mod soft;

use std::time::{Duration, Instant};

use serde_json::json;
use ukey::agent::gate::{ClientIdentity, Gate, Operation, Outcome, UseContext};
use ukey::policy::gate::CustodyGate;
use ukey::policy::paths::SystemPaths;
use ukey_api::crypto::encoding::base64_encode;
use ukey_api::{Credential, HashAlg, Mechanism, ObjectId, Pin, SignInput};

const DEV: &str = "http://localhost:8080";

struct Stats {
    name: &'static str,
    samples: Vec<Duration>,
    elapsed: Duration,
}

impl Stats {
    fn median_ms(&self) -> f64 {
        let mut s = self.samples.clone();
        s.sort();
        s[s.len() / 2].as_secs_f64() * 1e3
    }

    fn p90_ms(&self) -> f64 {
        let mut s = self.samples.clone();
        s.sort();
        s[s.len() * 9 / 10].as_secs_f64() * 1e3
    }

    fn per_sec(&self) -> f64 {
        self.samples.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn main() {
    let seconds: f64 =
        std::env::args().skip_while(|a| a != "--seconds").nth(1).and_then(|s| s.parse().ok()).unwrap_or(6.0);
    // The agent and the in-process gate get their own system directory (personal mode, no
    // policy file) and so their own in-use marker directory: the machine's /run/ukey/in-use
    // holds a marker pair for every soft token the test suites ever made (hundreds here), and
    // the gate reads that directory at every use, which is the test machine's clutter, not what
    // a holder's machine (a handful of carriers, on tmpfs) pays.
    let dir = tempfile::tempdir().expect("temp dir");
    let system = dir.path().join("system");
    let fx = soft::soft_token(&dir.path().join("soft"), "Alice", ukey_api::KeyAlgorithm::P256, 3);
    let agent = agent_support::TestAgent::start_in_env(
        dir,
        &["-vv", "--dev-origin", DEV, "--pin-cache", "86400:4000000000"],
        &[("UKEY_SYSTEM_DIR", &system)],
    );
    soft::wait_tokens(&agent, 1);
    let out = agent.ukey().args(["origins", "pair", DEV]).output().expect("pair");
    assert!(out.status.success());
    agent.script(&[&format!("pin {}", agent_support::SENTINEL_PIN)]);

    let driver = ukey_soft::SoftDriver::open(soft::soft_dir(&agent));
    let carrier = driver.token(&fx.serial).expect("token");
    let key = ObjectId::from_hex(fx.handle.rsplit('#').next().unwrap()).unwrap();
    let cred = Credential::Pin(Pin::new(agent_support::SENTINEL_PIN).unwrap());
    let digest = [0x42u8; 32];
    let input = SignInput { digest: digest.to_vec(), message: None };
    let digest_b64 = base64_encode(&digest);

    // The custody gate as the agent builds it (the same system directory), with its own audit
    // log next to the agent's (same file system, so the same fdatasync cost).
    let gate = CustodyGate::new(SystemPaths::under(&system), agent.dir.path().join("state-in-process/ukey/audit"));
    let cert_fp = ukey_api::CertificateInfo::parse(&fx.cert_der).expect("certificate").sha256_fingerprint;
    let uid = rustix::process::getuid().as_raw();
    let ctx = UseContext {
        uid,
        login: std::env::var("USER").ok(),
        client: ClientIdentity::Program { pid: std::process::id(), exe: std::env::current_exe().ok() },
        carrier: carrier.info().id.clone(),
        info: carrier.info().clone(),
        certificate: Some(cert_fp),
        operation: Operation::Sign,
        data_sm3: Some(hex::encode(HashAlg::Sm3.digest(&digest))),
    };
    let gated_sign = || {
        let permit = gate.authorize(&ctx).expect("gate allows");
        let sig = carrier.sign(&key, &Mechanism::EcdsaSha256, &input, &cred);
        let outcome = if sig.is_ok() { Outcome::Done } else { Outcome::Failed { kind: "SignFailed".into() } };
        permit.finish(&outcome).expect("outcome recorded");
        sig.expect("gated in-process sign")
    };

    let mut unix = agent.unix();
    let mut ws = agent.ws_hello(DEV);
    // A browser's WebSocket sets TCP_NODELAY; so does this client.
    ws.socket.get_mut().set_nodelay(true).expect("TCP_NODELAY");
    // Warm up every path (and fill the WebSocket client's PIN cache through the scripted dialog).
    for _ in 0..20 {
        carrier.sign(&key, &Mechanism::EcdsaSha256, &input, &cred).expect("in-process sign");
        gated_sign();
        unix.call("sign", json!({ "key": fx.handle, "digest": digest_b64, "pin": agent_support::SENTINEL_PIN }))
            .expect("unix sign");
        let r = ws.call("sign", json!({ "cert": fx.handle, "digest": digest_b64 }));
        assert!(r.get("result").is_some(), "{r}");
    }

    let mut stats = [
        Stats { name: "in-process (driver)", samples: Vec::new(), elapsed: Duration::ZERO },
        Stats { name: "in-process + gate", samples: Vec::new(), elapsed: Duration::ZERO },
        Stats { name: "agent, Unix socket", samples: Vec::new(), elapsed: Duration::ZERO },
        Stats { name: "agent, WebSocket", samples: Vec::new(), elapsed: Duration::ZERO },
    ];
    let per_round = Duration::from_millis(200);
    let total = Duration::from_secs_f64(seconds);
    let load_before = load_average();
    while stats[0].elapsed < total {
        for (i, s) in stats.iter_mut().enumerate() {
            let round = Instant::now();
            while round.elapsed() < per_round {
                let t = Instant::now();
                match i {
                    0 => {
                        carrier.sign(&key, &Mechanism::EcdsaSha256, &input, &cred).expect("sign");
                    }
                    1 => {
                        gated_sign();
                    }
                    2 => {
                        unix.call(
                            "sign",
                            json!({ "key": fx.handle, "digest": digest_b64, "pin": agent_support::SENTINEL_PIN }),
                        )
                        .expect("sign");
                    }
                    _ => {
                        let r = ws.call("sign", json!({ "cert": fx.handle, "digest": digest_b64 }));
                        assert!(r.get("result").is_some(), "{r}");
                    }
                }
                s.samples.push(t.elapsed());
            }
            s.elapsed += round.elapsed();
        }
    }
    println!("P-256 sign of a prepared digest on the soft token ({seconds} s per path, interleaved)");
    println!("load average before: {load_before}; after: {}", load_average());
    println!("{:<22} {:>8} {:>10} {:>10} {:>10}", "path", "n", "median ms", "p90 ms", "ops/s");
    for s in &stats {
        println!(
            "{:<22} {:>8} {:>10.3} {:>10.3} {:>10.1}",
            s.name,
            s.samples.len(),
            s.median_ms(),
            s.p90_ms(),
            s.per_sec()
        );
    }
    for base in &stats[..2] {
        for s in &stats[2..] {
            let added = s.median_ms() - base.median_ms();
            let ratio = s.per_sec() / base.per_sec();
            println!(
                "{} vs {}: {added:+.3} ms at the median (goal <= 0.3: {}), throughput {ratio:.2}x (goal >= 0.8: {})",
                s.name,
                base.name,
                if added <= 0.3 { "met" } else { "NOT met" },
                if ratio >= 0.8 { "met" } else { "NOT met" }
            );
        }
    }
    assert!(!agent.log().contains(agent_support::SENTINEL_PIN));
}

/// The 1, 5 and 15 minute load averages, to print next to the figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
