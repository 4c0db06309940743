//! Agent overhead: a P-256 signature over a prepared digest on the soft token, done in-process
//! (the driver called directly) and through the running agent over its Unix socket and its
//! WebSocket, in one run, interleaved in rounds so machine noise hits all three alike.
//!
//! The Unix-socket client supplies the PIN (as the CLI does with --pin-file); the WebSocket
//! client is a paired page and the agent runs with its optional PIN cache (time- and
//! use-bounded, here set large), so what is measured is the agent, not a human at pinentry.
//! Both in-process and agent paths pay the soft token's own cost (file lock, Argon2 with the
//! cheapest parameters, two fsynced writes), so the difference is the agent's overhead.
//!
//! Goals: added median latency <= 0.3 ms; agent throughput >= 0.8x in-process.
//! Run: `cargo bench -p ukey --bench agent_overhead -- [--seconds N]` (default 6 s per path).

#[path = "../tests/agent_support/mod.rs"]
mod agent_support;
#[path = "../tests/agent_support/soft.rs"]
mod soft;

use std::time::{Duration, Instant};

use serde_json::json;
use ukey_api::crypto::encoding::base64_encode;
use ukey_api::{Credential, Mechanism, ObjectId, Pin, SignInput};

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
    let (agent, fx) =
        soft::with_soft_key(ukey_api::KeyAlgorithm::P256, 3, &["--dev-origin", DEV, "--pin-cache", "86400:4000000000"]);
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

    let mut unix = agent.unix();
    let mut ws = agent.ws_hello(DEV);
    // Warm up every path (and fill the WebSocket client's PIN cache through the scripted dialog).
    for _ in 0..20 {
        carrier.sign(&key, &Mechanism::EcdsaSha256, &input, &cred).expect("in-process sign");
        unix.call("sign", json!({ "key": fx.handle, "digest": digest_b64, "pin": agent_support::SENTINEL_PIN }))
            .expect("unix sign");
        let r = ws.call("sign", json!({ "cert": fx.handle, "digest": digest_b64 }));
        assert!(r.get("result").is_some(), "{r}");
    }

    let mut stats = [
        Stats { name: "in-process (driver)", samples: Vec::new(), elapsed: Duration::ZERO },
        Stats { name: "agent, Unix socket", samples: Vec::new(), elapsed: Duration::ZERO },
        Stats { name: "agent, WebSocket", samples: Vec::new(), elapsed: Duration::ZERO },
    ];
    let per_round = Duration::from_millis(200);
    let total = Duration::from_secs_f64(seconds);
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
    let base = &stats[0];
    for s in &stats[1..] {
        let added = s.median_ms() - base.median_ms();
        let ratio = s.per_sec() / base.per_sec();
        println!(
            "{}: +{added:.3} ms at the median (goal <= 0.3: {}), throughput {ratio:.2}x in-process (goal >= 0.8: {})",
            s.name,
            if added <= 0.3 { "met" } else { "NOT met" },
            if ratio >= 0.8 { "met" } else { "NOT met" }
        );
    }
    assert!(!agent.log().contains(agent_support::SENTINEL_PIN));
}
