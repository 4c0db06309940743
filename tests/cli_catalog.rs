//! `ukey catalog list | check | udev` end to end, against the real binary with the system and
//! user catalog directories pointed at temporary directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Env { tmp: tempfile::tempdir().unwrap() };
        fs::create_dir_all(env.system_dir()).unwrap();
        fs::create_dir_all(env.user_dir()).unwrap();
        env
    }

    fn system_dir(&self) -> PathBuf {
        self.tmp.path().join("etc/catalog.d")
    }

    fn user_dir(&self) -> PathBuf {
        self.tmp.path().join("config/catalog.d")
    }

    fn ukey(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ukey"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.tmp.path().join("home"))
            .env("UKEY_SYSTEM_DIR", self.tmp.path().join("etc"))
            .env("UKEY_CONFIG_DIR", self.tmp.path().join("config"))
            .env("UKEY_SOFT_DIR", self.tmp.path().join("soft"))
            .output()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const USER_ENTRY: &str = r#"
[[carrier]]
id = "acme-token"
manufacturer = "Acme"
model = "Token"
interface = "ccid"
usb = [{ vendor = 0xF00D, product = 0x0001 }]
sources = ["the holder's own lsusb"]
compliance = { compliant = false, reason = "not yet assessed" }
"#;

#[test]
fn list_shows_seed_and_user_entries() {
    let env = Env::new();
    fs::write(env.user_dir().join("mine.toml"), USER_ENTRY).unwrap();
    let out = env.ukey(&["catalog", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.lines().any(|l| l.starts_with("acme-token ") && l.contains("f00d:0001") && l.ends_with("user")));
    assert!(table.lines().any(|l| l.starts_with("yubico-yubikey-5 ") && l.contains("1050:0407")));

    let out = env.ukey(&["catalog", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = json["entries"].as_array().unwrap();
    let acme = entries.iter().find(|e| e["id"] == "acme-token").unwrap();
    assert_eq!(acme["usb"][0]["vendor"], 0xF00D);
    assert_eq!(acme["origin"]["layer"], "user");
    let epass = entries.iter().find(|e| e["id"] == "feitian-epass2003").unwrap();
    assert_eq!(epass["atr"][0], "3B 9F 95 81 31 FE 9F 00 66 46 53 05 .. .. .. 71 DF 00 00 .. .. .. ..");
    assert_eq!(json["problems"].as_array().unwrap().len(), 0);

    let out = env.ukey(&["catalog", "list", "--seed-only", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["entries"].as_array().unwrap().iter().all(|e| e["id"] != "acme-token"));
}

#[test]
fn check_reports_file_and_line_and_fails_on_errors() {
    let env = Env::new();
    let out = env.ukey(&["catalog", "check"]);
    assert!(out.status.success(), "a clean catalog passes: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 errors, 0 warnings"), "{}", text(&out.stdout));

    fs::write(env.user_dir().join("mine.toml"), USER_ENTRY).unwrap();
    let bad = env.system_dir().join("unit.toml");
    fs::write(&bad, "[[carrier]]\nid = \"acme-bad\"\ninterface = \"usb\"\n").unwrap();
    let out = env.ukey(&["catalog", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains(&format!("{}:3: error: entry `acme-bad`: unknown interface `usb`", bad.display())),
        "{report}"
    );
    assert!(
        report
            .contains(&format!("{}:1: error: entry `acme-bad`: missing required field `manufacturer`", bad.display()))
    );
    assert!(text(&out.stderr).contains("catalog problem(s) above"), "{}", text(&out.stderr));

    let out = env.ukey(&["catalog", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = json["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p["line"] == 3 && p["entry"] == "acme-bad" && p["severity"] == "error"));
    assert!(json["files"].as_array().unwrap().iter().any(|f| f.as_str().unwrap().ends_with("mine.toml")));
}

#[test]
fn udev_writes_the_committed_rules_from_the_seed() {
    let env = Env::new();
    let out_file = env.tmp.path().join("70-ukey.rules");
    let out = env.ukey(&["catalog", "udev", "--seed-only", "--out", out_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("udev/70-ukey.rules");
    assert_eq!(fs::read_to_string(&out_file).unwrap(), fs::read_to_string(committed).unwrap());
    assert!(text(&out.stderr).contains("udevadm control --reload"), "{}", text(&out.stderr));

    // With the unit's entries, the rules cover them too (to stdout).
    fs::write(env.system_dir().join("unit.toml"), USER_ENTRY).unwrap();
    let out = env.ukey(&["catalog", "udev"]);
    assert!(out.status.success());
    let rules = text(&out.stdout);
    assert!(rules.contains("ATTR{idVendor}==\"f00d\", ATTR{idProduct}==\"0001\""), "{rules}");
    assert!(rules.contains("unit.toml"), "the header names the unit's file");
}
