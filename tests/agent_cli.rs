//! CLI through the agent: with an agent running, `ukey` commands reach carriers through it (so
//! its gate — custody policy and audit — sees every use); with `UKEY_NO_AGENT=1`, or no agent,
//! they drive the carriers directly.

mod agent_support;
#[path = "agent_support/soft.rs"]
mod soft;

use agent_support::SENTINEL_PIN;
use serde_json::Value;

#[test]
fn cli_commands_go_through_the_running_agent() {
    let (agent, fx) = soft::with_soft(&[]);
    let out = agent.ukey().args(["--json", "tokens"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&fx.serial), "{text}");
    agent.wait_log("Unix-socket client connected");

    // A PIN operation: the CLI collects the PINs, the agent's gate records the use.
    let new_pin = "n3w-pin-8888";
    let out = agent
        .ukey()
        .args(["pin", "change"])
        .env("UKEY_PIN", SENTINEL_PIN)
        .env("UKEY_NEW_PIN", new_pin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    agent.wait_log("use: change the PIN by ");
    let exe = agent_support::ukey_bin();
    assert!(
        agent.log().contains(&format!("use: change the PIN by {}", exe.canonicalize().unwrap().display())),
        "{}",
        agent.log()
    );
    // The new PIN works, through the agent.
    let mut c = agent.unix();
    assert!(c.call("sign", serde_json::json!({ "key": fx.handle, "data": "aGk=", "pin": new_pin })).is_ok());
    assert!(!agent.log().contains(SENTINEL_PIN) && !agent.log().contains(new_pin));

    // A wrong PIN through the agent comes back as the CLI's PIN error (exit code 3).
    let out = agent
        .ukey()
        .args(["--json", "pin", "change"])
        .env("UKEY_PIN", "wrong-pin")
        .env("UKEY_NEW_PIN", "whatever-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["kind"], "WrongPin");
    assert_eq!(err["error"]["retries_left"], 2);
}

#[test]
fn no_agent_or_opting_out_drives_carriers_directly() {
    let (mut agent, fx) = soft::with_soft(&[]);
    let before = agent.log().matches("Unix-socket client connected").count();
    let out = agent.ukey().args(["--json", "tokens"]).env("UKEY_NO_AGENT", "1").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&fx.serial));
    assert_eq!(agent.log().matches("Unix-socket client connected").count(), before, "UKEY_NO_AGENT bypasses the agent");
    assert!(agent.terminate());
    let out = agent.ukey().args(["--json", "tokens"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&fx.serial),
        "without an agent the CLI finds the token itself"
    );
}
