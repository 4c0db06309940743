//! Agent overhead: a P-256 signature over a prepared digest, done in-process (the driver called
//! directly) and through the running agent over its Unix socket and its WebSocket, in one run,
//! interleaved in rounds so machine noise hits every path alike. Two carriers, one table each:
//! - the built-in soft token;
//! - a SoftHSM2 token driven by the PKCS#11 driver (its own `SOFTHSM2_CONF` and token directory
//!   under the bench's temporary directory, the token made with `softhsm2-util`, the P-256 key
//!   and its certificate made by ukey). SoftHSM reads `SOFTHSM2_CONF` once, when the library
//!   starts, so this table is measured in a child process of the bench started with it set.
//!
//! The Unix-socket client supplies the PIN (as the CLI does with --pin-file); the WebSocket
//! client is a paired page and the agent runs with its optional PIN cache (time- and
//! use-bounded, here set large), so what is measured is the agent, not a human at pinentry.
//! Every path pays the carrier's own cost: the soft token's file lock, Argon2 with the cheapest
//! parameters and two fsynced writes; on SoftHSM, one PKCS#11 login per signature. Neither the
//! agent nor the in-process rows keep a PKCS#11 login (`keep_login` is off, the default, in both
//! configurations): the agent's PIN cache holds the PIN, not a login, so every path does the same
//! `C_Login`, `C_FindObjects*`, `C_SignInit`, `C_Sign`, `C_Logout` per signature.
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
//! `-vvv` debug log, and with its own system directory (so its own in-use marker directory, not
//! the machine's), so what is measured is the agent as a holder runs it.
//!
//! Goals (issue 5): added median latency <= 0.3 ms; agent throughput >= 0.8x in-process. The
//! report gives both against the bare driver and against the gated in-process path.
//! Run (both tables; the default is 6 s per path, `--driver soft` or `--driver softhsm` for one):
//!
//!     TMPDIR=/dev/shm cargo bench -p ukey --bench agent_overhead -- --seconds 3
//!
//! Needs `softhsm2` (module and `softhsm2-util`) for the second table.

#[path = "../tests/agent_support/mod.rs"]
mod agent_support;
#[path = "../tests/agent_support/soft.rs"]
mod soft;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use ukey::agent::gate::{ClientIdentity, Gate, Operation, Outcome, UseContext};
use ukey::policy::gate::CustodyGate;
use ukey::policy::paths::SystemPaths;
use ukey_api::crypto::encoding::base64_encode;
use ukey_api::{Carrier, Credential, HashAlg, Mechanism, ObjectId, Pin, SignInput};

const DEV: &str = "http://localhost:8080";
/// SoftHSM2's module, as Debian installs it.
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Set (to the SoftHSM directory) in the child process that measures the SoftHSM table.
const SOFTHSM_CHILD_ENV: &str = "UKEY_BENCH_SOFTHSM_DIR";
/// Label of the SoftHSM token.
const SOFTHSM_LABEL: &str = "BenchHSM";

struct Stats {
    name: &'static str,
    samples: Vec<Duration>,
    elapsed: Duration,
}

impl Stats {
    fn new(name: &'static str) -> Self {
        Stats { name, samples: Vec::new(), elapsed: Duration::ZERO }
    }

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

/// One carrier's key as every path names it.
struct Target<'a> {
    carrier: &'a dyn Carrier,
    key: ObjectId,
    /// `carrier-id#key-id`, what the agent's clients send.
    handle: String,
    cert_der: Vec<u8>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().skip_while(|a| *a != name).nth(1).cloned();
    let seconds: f64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(6.0);
    if let Some(dir) = std::env::var_os(SOFTHSM_CHILD_ENV) {
        softhsm_table(Path::new(&dir), seconds);
        return;
    }
    let driver = arg("--driver").unwrap_or_else(|| "all".into());
    assert!(
        ["all", "soft", "softhsm"].contains(&driver.as_str()),
        "--driver takes soft, softhsm or all, not {driver:?}"
    );
    if driver != "softhsm" {
        soft_table(seconds);
    }
    if driver != "soft" {
        // A private SoftHSM for the child: its configuration must be in the environment before
        // the library starts, so the child is this bench again, started with it set.
        assert!(Path::new(SOFTHSM).exists(), "{SOFTHSM} is missing: install the Debian package `softhsm2`");
        let dir = tempfile::tempdir().expect("temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
        )
        .expect("softhsm2.conf");
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .args(["--seconds", &seconds.to_string()])
            .env(SOFTHSM_CHILD_ENV, dir.path())
            .env("SOFTHSM2_CONF", &conf)
            .status()
            .expect("starting the SoftHSM measurement");
        assert!(status.success(), "the SoftHSM measurement failed");
    }
}

/// The soft-token table.
fn soft_table(seconds: f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let system = dir.path().join("system");
    let fx = soft::soft_token(&dir.path().join("soft"), "Alice", ukey_api::KeyAlgorithm::P256, 3);
    let agent = agent_support::TestAgent::start_in_env(
        dir,
        &["-vv", "--dev-origin", DEV, "--pin-cache", "86400:4000000000"],
        &[("UKEY_SYSTEM_DIR", &system)],
    );
    soft::wait_tokens(&agent, 1);
    let driver = ukey_soft::SoftDriver::open(soft::soft_dir(&agent));
    let carrier = driver.token(&fx.serial).expect("token");
    let key = ObjectId::from_hex(fx.handle.rsplit('#').next().expect("key id")).expect("key id");
    let target = Target { carrier: carrier.as_ref(), key, handle: fx.handle.clone(), cert_der: fx.cert_der.clone() };
    measure("the soft token", &agent, &system, &target, seconds);
}

/// The SoftHSM table, in the child process whose `SOFTHSM2_CONF` names `dir`'s configuration.
fn softhsm_table(dir: &Path, seconds: f64) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join("softhsm2-util").is_file()))
        .unwrap_or(false);
    assert!(found, "`softhsm2-util` is missing: install the Debian package `softhsm2`");
    let pin = agent_support::SENTINEL_PIN;
    let made = std::process::Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", SOFTHSM_LABEL, "--so-pin", "12345678", "--pin", pin])
        .output()
        .expect("softhsm2-util");
    assert!(made.status.success(), "softhsm2-util --init-token: {}", String::from_utf8_lossy(&made.stderr));

    // The key and its certificate, made by ukey's PKCS#11 driver in this process.
    let driver = ukey_pkcs11::Pkcs11Driver::new(&ukey_pkcs11::Pkcs11Config::only([SOFTHSM]));
    let carrier = driver
        .pkcs11_carriers()
        .expect("SoftHSM carriers")
        .into_iter()
        .find(|c| c.info().label == SOFTHSM_LABEL)
        .expect("the bench token");
    let (key, cert_der) = certified_p256(carrier.as_ref(), pin);

    // The agent: the PKCS#11 driver with SoftHSM only (no p11-kit, no soft tokens, no PC/SC).
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("drivers = [\"pkcs11\"]\n\n[soft]\nenabled = false\n\n[pkcs11]\np11kit = false\n\n[[pkcs11.modules]]\npath = \"{SOFTHSM}\"\n"),
    )
    .expect("config.toml");
    let agent_dir = tempfile::tempdir().expect("temp dir");
    let system = agent_dir.path().join("system");
    let conf = dir.join("softhsm2.conf");
    let agent = agent_support::TestAgent::start_in_env(
        agent_dir,
        &["-vv", "--dev-origin", DEV, "--pin-cache", "86400:4000000000"],
        &[
            ("UKEY_SYSTEM_DIR", &system),
            ("UKEY_CONFIG", &config),
            ("UKEY_DRIVERS", Path::new("pkcs11")),
            ("SOFTHSM2_CONF", &conf),
        ],
    );
    let until = Instant::now() + agent_support::DEADLINE;
    let mut client = agent.unix();
    // The agent names the carrier by its own module name (the config file's); clients use that.
    let agent_id = loop {
        let listed = client.call("tokens.list", json!({})).expect("tokens.list");
        let tokens = listed["tokens"].as_array().cloned().unwrap_or_default();
        if let Some(t) = tokens.iter().find(|t| t["label"] == SOFTHSM_LABEL) {
            break t["id"].as_str().expect("carrier id").to_string();
        }
        assert!(Instant::now() < until, "the agent never listed the SoftHSM token: {listed}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let handle = format!("{agent_id}#{}", key.to_hex());
    let target = Target { carrier: carrier.as_ref(), key, handle, cert_der };
    measure("SoftHSM2 (PKCS#11 driver, a login per signature)", &agent, &system, &target, seconds);
}

/// Makes a P-256 key on `carrier` and imports a self-signed certificate for it.
fn certified_p256(carrier: &dyn Carrier, pin: &str) -> (ObjectId, Vec<u8>) {
    use ukey_api::crypto::certbuild::{CertificateOptions, self_signed};
    use ukey_api::crypto::name::parse_name;
    use ukey_api::crypto::signer::CarrierKeySigner;
    use ukey_api::{CertificateImport, KeyGenRequest};

    let cred = Credential::Pin(Pin::new(pin).expect("PIN"));
    let request = KeyGenRequest { algorithm: ukey_api::KeyAlgorithm::P256, label: "bench".into(), id: None };
    let key = carrier.generate_key(&request, &cred).expect("generate key");
    let spki = key.public_key.clone().expect("public key");
    let signer = CarrierKeySigner::new(carrier, key.id.clone(), spki, &cred).expect("signer");
    let der = self_signed(&signer, &parse_name("CN=Bench").expect("name"), &CertificateOptions::end_entity(30))
        .expect("certificate");
    carrier
        .import_certificate(&CertificateImport { der: der.clone(), label: None, id: Some(key.id.clone()) }, &cred)
        .expect("import certificate");
    (key.id, der)
}

/// Measures the four paths against `target`, interleaved, and prints the table.
fn measure(what: &str, agent: &agent_support::TestAgent, system: &Path, target: &Target<'_>, seconds: f64) {
    let out = agent.ukey().args(["origins", "pair", DEV]).output().expect("pair");
    assert!(out.status.success(), "origins pair: {}", String::from_utf8_lossy(&out.stderr));
    agent.script(&[&format!("pin {}", agent_support::SENTINEL_PIN)]);

    let carrier = target.carrier;
    let key = &target.key;
    let cred = Credential::Pin(Pin::new(agent_support::SENTINEL_PIN).expect("PIN"));
    let digest = [0x42u8; 32];
    let input = SignInput { digest: digest.to_vec(), message: None };
    let digest_b64 = base64_encode(&digest);
    let handle = target.handle.as_str();

    // The custody gate as the agent builds it (the same system directory), with its own audit
    // log next to the agent's (same file system, so the same fdatasync cost).
    let audit: PathBuf = agent.dir.path().join("state-in-process/ukey/audit");
    let gate = CustodyGate::new(SystemPaths::under(system), audit);
    let cert_fp = ukey_api::CertificateInfo::parse(&target.cert_der).expect("certificate").sha256_fingerprint;
    let ctx = UseContext {
        uid: rustix::process::getuid().as_raw(),
        login: std::env::var("USER").ok(),
        client: ClientIdentity::Program { pid: std::process::id(), exe: std::env::current_exe().ok() },
        carrier: carrier.info().id.clone(),
        info: carrier.info().clone(),
        certificate: Some(cert_fp),
        operation: Operation::Sign,
        data_sm3: Some(hex::encode(HashAlg::Sm3.digest(&digest))),
    };
    let bare_sign = || carrier.sign(key, &Mechanism::EcdsaSha256, &input, &cred).expect("in-process sign");
    let gated_sign = || {
        let permit = gate.authorize(&ctx).expect("gate allows");
        let sig = carrier.sign(key, &Mechanism::EcdsaSha256, &input, &cred);
        let outcome = if sig.is_ok() { Outcome::Done } else { Outcome::Failed { kind: "SignFailed".into() } };
        permit.finish(&outcome).expect("outcome recorded");
        sig.expect("gated in-process sign")
    };

    let mut unix = agent.unix();
    let mut ws = agent.ws_hello(DEV);
    // A browser's WebSocket sets TCP_NODELAY; so does this client.
    ws.socket.get_mut().set_nodelay(true).expect("TCP_NODELAY");
    let unix_params = json!({ "key": handle, "digest": digest_b64, "pin": agent_support::SENTINEL_PIN });
    let ws_params = json!({ "cert": handle, "digest": digest_b64 });
    // Warm up every path (and fill the WebSocket client's PIN cache through the scripted dialog).
    for _ in 0..20 {
        bare_sign();
        gated_sign();
        unix.call("sign", unix_params.clone())
            .unwrap_or_else(|e| panic!("unix sign: {e:?}; agent log:\n{}", agent.log()));
        let r = ws.call("sign", ws_params.clone());
        assert!(r.get("result").is_some(), "{r}");
    }

    let mut stats = [
        Stats::new("in-process (driver)"),
        Stats::new("in-process + gate"),
        Stats::new("agent, Unix socket"),
        Stats::new("agent, WebSocket"),
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
                        bare_sign();
                    }
                    1 => {
                        gated_sign();
                    }
                    2 => {
                        unix.call("sign", unix_params.clone())
                            .unwrap_or_else(|e| panic!("unix sign: {e:?}; agent log:\n{}", agent.log()));
                    }
                    _ => {
                        let r = ws.call("sign", ws_params.clone());
                        assert!(r.get("result").is_some(), "{r}");
                    }
                }
                s.samples.push(t.elapsed());
            }
            s.elapsed += round.elapsed();
        }
    }
    println!("P-256 sign of a prepared digest on {what} ({seconds} s per path, interleaved)");
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
    println!();
    assert!(!agent.log().contains(agent_support::SENTINEL_PIN));
}

/// The 1, 5 and 15 minute load averages, to print next to the figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
