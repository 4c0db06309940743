//! The custody refusals on real carriers other than the soft token, through the real `ukey`
//! binary's direct path: a SoftHSM2 token (PKCS#11) and the virtual PIV card (pcscd + vpcd). On
//! each, a carrier with no custody record is refused under `deny`, a carrier registered to
//! another account is refused naming its holder, and once registered to this account the same
//! signature is made — so the refusals come from the policy, not from the carrier.

mod piv_rig;
mod pkcs11_rig;

use std::path::{Path, PathBuf};

use serde_json::Value;
use ukey::policy::accounts::Account;
use ukey::policy::record::{CarrierRef, CustodyRecord, Holder, Right, Status};
use ukey::policy::store::Registry;

const DENY: &str = "mode = \"deny\"\ndevelopment = true\nunit = \"Finance Bureau\"\n";

/// Exit code of a policy refusal.
const EXIT_REFUSED: i32 = 6;

/// The custody side of a test machine: system directory and the holder's audit log.
struct Custody {
    system: PathBuf,
    audit: PathBuf,
}

impl Custody {
    fn new(dir: &Path) -> Custody {
        let system = dir.join("system");
        std::fs::create_dir_all(&system).unwrap();
        Custody { system, audit: dir.join("audit") }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("UKEY_SYSTEM_DIR", self.system.display().to_string()),
            ("UKEY_AUDIT_DIR", self.audit.display().to_string()),
            ("UKEY_NO_AGENT", "1".to_string()),
        ]
    }

    fn deny_unregistered(&self) {
        std::fs::write(self.system.join("policy.toml"), DENY).unwrap();
    }

    /// Registers the carrier (as `ukey tokens --json` describes it) to Li Si for `account`.
    fn register(&self, token: &Value, account: &str) {
        let s = |k: &str| token[k].as_str().unwrap_or_default().to_string();
        let record = CustodyRecord {
            status: Status::Active,
            accounts: vec![account.to_string()],
            rights: vec![Right::Sign],
            custodian: "Li Si".into(),
            registered: "2025-03-01T10:00:00Z".into(),
            issued: "2025-03-01T10:00:00Z".into(),
            operator: "test".into(),
            carrier: CarrierRef { serial: s("serial"), model: s("model"), manufacturer: s("manufacturer") },
            holder: Holder { name: "Li Si".into(), id: "E2002".into(), unit: "Finance".into() },
            ..Default::default()
        };
        Registry::new(self.system.join("custody")).write(&record).expect("write the custody record");
    }
}

fn with<'a>(env: &'a [(&'static str, String)], more: &[(&'static str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).chain(more.iter().copied()).collect()
}

fn me() -> String {
    Account::current().label()
}

#[test]
fn softhsm_refuses_an_unregistered_token_and_another_accounts_token() {
    use pkcs11_rig::{PIN, Rig};
    let rig = Rig::new();
    let custody = Custody::new(&rig.path("custody"));
    let env = custody.env();
    let pin = with(&env, &[("UKEY_PIN", PIN)]);
    rig.init_token("Held");
    // The key is made while no policy is installed (personal mode).
    rig.ukey(&["keygen", "--token", "Held", "--alg", "p256", "--label", "k"], &pin).ok("ukey keygen");
    let tokens = rig.ukey(&["tokens", "--json"], &env.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    let tokens = tokens.ok("ukey tokens").json();
    let token = tokens["tokens"]
        .as_array()
        .and_then(|l| l.iter().find(|t| t["label"] == "Held"))
        .cloned()
        .unwrap_or_else(|| panic!("no Held token: {tokens}"));
    let doc = rig.path("doc.txt");
    std::fs::write(&doc, b"contract 7").unwrap();
    let sign = ["sign", "--token", "Held", "--key", "k", "--in", doc.to_str().unwrap()];

    custody.deny_unregistered();
    let refused = rig.ukey(&sign, &pin);
    assert_eq!(refused.code, Some(EXIT_REFUSED), "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("is not registered in this machine's custody registry, and the policy refuses unregistered keys"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("ukey helpdesk bind"), "it says what to do: {}", refused.stderr);
    assert!(refused.stdout.is_empty(), "nothing signed: {}", refused.stdout);

    custody.register(&token, "#4242");
    let refused = rig.ukey(&sign, &pin);
    assert_eq!(refused.code, Some(EXIT_REFUSED), "{}\n{}", refused.stdout, refused.stderr);
    let expected = format!("this key is registered to Li Si (Finance); account {} may not use it", me());
    assert!(refused.stderr.contains(&expected), "{}", refused.stderr);

    custody.register(&token, &me());
    let signed = rig.ukey(&sign, &pin).ok("ukey sign once registered to this account");
    assert!(!signed.bytes.is_empty(), "a signature");
}

#[test]
fn the_virtual_piv_card_refuses_an_unregistered_card_and_another_accounts_card() {
    use piv_rig::{PIN, Rig, insert, lease};
    let lease = lease();
    let _card = insert(&lease);
    let rig = Rig::new(&lease);
    let custody = Custody::new(&rig.path("custody"));
    let env = custody.env();
    let pin = with(&env, &[("UKEY_PIN", PIN)]);
    rig.ukey(&["keygen", "--alg", "p256", "--label", "k", "--id", "9a"], &pin).ok("ukey keygen");
    let tokens = rig.ukey(&["--json", "tokens"], &env.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    let tokens = tokens.ok("ukey tokens").json();
    let list = tokens["tokens"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "exactly the card in {} is listed: {tokens}", rig.reader());
    let doc = rig.path("doc.txt");
    std::fs::write(&doc, b"contract 7").unwrap();
    let sign = ["sign", "--key", "9a", "--in", doc.to_str().unwrap()];

    custody.deny_unregistered();
    let refused = rig.ukey(&sign, &pin);
    assert_eq!(refused.code, Some(EXIT_REFUSED), "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("is not registered in this machine's custody registry, and the policy refuses unregistered keys"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.is_empty(), "nothing signed: {}", refused.stdout);

    custody.register(&list[0], "#4242");
    let refused = rig.ukey(&sign, &pin);
    assert_eq!(refused.code, Some(EXIT_REFUSED), "{}\n{}", refused.stdout, refused.stderr);
    let expected = format!("this key is registered to Li Si (Finance); account {} may not use it", me());
    assert!(refused.stderr.contains(&expected), "{}", refused.stderr);

    custody.register(&list[0], &me());
    let signed = rig.ukey(&sign, &pin).ok("ukey sign once registered to this account");
    assert!(!signed.bytes.is_empty(), "a signature");
}
