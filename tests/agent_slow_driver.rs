//! The agent never makes a `tokens.list` or `agent.status` wait for a slow driver.
//!
//! The real agent runs the PKCS#11 driver with a config naming only the real SoftHSM2 and the
//! hung-module fixture (tests/hung_module: a module whose `C_Initialize` never returns, standing
//! for OpenSC 0.23's `opensc-pkcs11.so`, which intermittently deadlocks there on this rig). The
//! module deadline is long (15 s), so the first calls land while the driver is still starting:
//! they must answer then, naming the driver as starting. Once the deadline passes, the SoftHSM
//! token is served and the hung module is reported as failed.

mod agent_support;
mod hung_module;
mod pkcs11_rig;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent_support::TestAgent;
use pkcs11_rig::{Rig, SOFTHSM};
use serde_json::{Value, json};

/// The module deadline the agent is given.
const MODULE_DEADLINE_MS: u64 = 15_000;

fn driver<'a>(reply: &'a Value, name: &str) -> &'a Value {
    reply["drivers"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["driver"] == name))
        .unwrap_or_else(|| panic!("no {name} driver in {reply}"))
}

#[test]
fn list_and_status_answer_while_a_driver_waits_for_a_hung_module() {
    let hung = hung_module::path();
    let rig = Rig::new();
    rig.init_token("AgentBesideHung");
    std::fs::write(
        &rig.config,
        format!(
            "drivers = [\"pkcs11\"]\n\n[soft]\nenabled = false\n\n[pkcs11]\np11kit = false\ninit_timeout_ms = {MODULE_DEADLINE_MS}\n\n\
             [[pkcs11.modules]]\npath = \"{SOFTHSM}\"\n\n[[pkcs11.modules]]\npath = \"{}\"\n",
            hung.display()
        ),
    )
    .expect("writing the config");
    let dir = tempfile::tempdir().expect("temp dir");
    let env: Vec<(&str, PathBuf)> = vec![
        ("UKEY_CONFIG", rig.config.clone()),
        ("UKEY_DRIVERS", PathBuf::from("pkcs11")),
        ("SOFTHSM2_CONF", rig.softhsm_conf.clone()),
    ];
    let env_refs: Vec<(&str, &std::path::Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let started = Instant::now();
    let agent = TestAgent::start_in_env(dir, &[], &env_refs);
    let mut client = agent.unix();

    // Right away: answers, with the PKCS#11 driver still starting and no carriers yet.
    let listed = client.call("tokens.list", json!({})).expect("tokens.list answers while a driver starts");
    let status = client.call("agent.status", json!({})).expect("agent.status answers while a driver starts");
    let answered = started.elapsed();
    assert!(
        answered < Duration::from_millis(MODULE_DEADLINE_MS),
        "the answers came after the module deadline ({answered:?}); the test proves nothing on a machine this slow"
    );
    assert_eq!(driver(&listed, "pkcs11")["state"], "starting", "{listed}");
    assert_eq!(driver(&status, "pkcs11")["state"], "starting", "{status}");
    assert!(listed["tokens"].as_array().is_some_and(Vec::is_empty), "{listed}");

    // After the deadline: the driver is up, SoftHSM's token is served, the hung module is failed.
    agent.wait_log("driver pkcs11 is up");
    agent.wait_log("carrier present");
    let listed = client.call("tokens.list", json!({})).expect("tokens.list");
    assert_eq!(driver(&listed, "pkcs11")["state"], "up", "{listed}");
    let tokens = listed["tokens"].as_array().cloned().unwrap_or_default();
    assert!(tokens.iter().any(|t| t["label"] == "AgentBesideHung"), "{listed}");
    let problems = driver(&listed, "pkcs11")["problems"].to_string();
    assert!(
        problems.contains("did not answer C_Initialize") && problems.contains(&hung.display().to_string()),
        "{listed}"
    );
    let status = client.call("agent.status", json!({})).expect("agent.status");
    assert_eq!(driver(&status, "pkcs11")["state"], "up", "{status}");
    assert!(status["carriers"].as_u64().is_some_and(|n| n >= 1), "{status}");
}
