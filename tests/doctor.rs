//! `ukey doctor --json` end to end, against the real binary: each situation a holder can be in
//! gives the expected diagnosis (asserted on the JSON findings), with the machine's parts made
//! real where they can be — pcscd stopped and started, a pcscd with no readers, the virtual PIV
//! card in vpcd with known and unknown ATRs, certificates about to expire — and the rest in
//! temporary trees (sysfs, /dev, udev rules, the unit's catalog) through the doctor's path
//! overrides.

mod agent_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use ukey_api::crypto::{CarrierKeySigner, CertificateOptions, parse_name, self_signed};
use ukey_api::{Carrier, CertificateImport, Credential, KeyAlgorithm, KeyGenRequest, ObjectId, Pin};
use ukey_iso7816::PivOptions;
use ukey_iso7816::piv::ManagementKey;
use ukey_vpiv::harness::ReaderLease;
use ukey_vpiv::{CardConfig, VirtualPiv};

/// Longest wait for a vpcd reader or for the exclusive pcscd lease: other test binaries may
/// hold them for a while.
const LEASE_TIMEOUT: Duration = Duration::from_secs(600);
const ALL_CHECKS: [&str; 12] = [
    "pcscd",
    "readers",
    "cards",
    "usb",
    "modules",
    "pkcs11",
    "permissions",
    "udev-rules",
    "agent",
    "soft-store",
    "custody",
    "certificates",
];
/// SoftHSM2's PKCS#11 module (Debian package softhsm2).
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A temporary machine: system and user directories, sysfs, /dev, udev rules, runtime dir.
struct Machine {
    tmp: tempfile::TempDir,
    readers: String,
}

impl Machine {
    fn new() -> Self {
        let m = Machine { tmp: tempfile::tempdir().expect("temp dir"), readers: "no reader has this name".into() };
        for dir in ["etc/catalog.d", "config", "home", "run", "sys/bus/usb/devices", "dev", "rules.d", "xdg/ukey"] {
            fs::create_dir_all(m.path(dir)).expect("mkdir");
        }
        // Only the modules a test names: the machine's p11-kit registrations stay out.
        fs::write(m.path("xdg/ukey/config.toml"), "[pkcs11]\np11kit = false\n").expect("config");
        m
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Lets ukey use only this PC/SC reader (other tests' cards stay untouched).
    fn only_reader(mut self, reader: &str) -> Self {
        self.readers = reader.to_string();
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ukey"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("UKEY_SYSTEM_DIR", self.path("etc"))
            .env("UKEY_CONFIG_DIR", self.path("config"))
            .env("UKEY_SOFT_DIR", self.path("soft"))
            .env("UKEY_SYSFS_ROOT", self.path("sys"))
            .env("UKEY_DEV_ROOT", self.path("dev"))
            .env("UKEY_UDEV_RULES_DIRS", self.path("rules.d"))
            .env("UKEY_PCSC_READERS", &self.readers);
        cmd
    }

    /// A SoftHSM2 configuration with its own token directory; returns the file.
    fn softhsm_conf(&self) -> PathBuf {
        let tokens = self.path("softhsm-tokens");
        fs::create_dir_all(&tokens).expect("mkdir");
        let conf = self.path("softhsm2.conf");
        fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()))
            .expect("softhsm2.conf");
        conf
    }

    /// Runs `ukey doctor --json [args]` and returns the findings.
    fn doctor(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["doctor", "--json"];
        all.extend_from_slice(args);
        let out = self.command(&all).output().expect("run ukey");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("doctor printed no JSON ({e}); stdout {}; stderr {}", text(&out.stdout), text(&out.stderr))
        });
        let findings = json["findings"].as_array().expect("findings").clone();
        let failed = findings.iter().any(|f| f["status"] == "fail");
        assert_eq!(out.status.success(), !failed, "exit status follows failures: {}", text(&out.stderr));
        let s = &json["summary"];
        let count = |st: &str| findings.iter().filter(|f| f["status"] == st).count() as u64;
        assert_eq!(
            (s["ok"].as_u64(), s["warn"].as_u64(), s["fail"].as_u64()),
            (Some(count("ok")), Some(count("warn")), Some(count("fail")))
        );
        findings
    }

    /// Adds a USB device to the fake sysfs (and its /dev/bus/usb node).
    fn usb_device(&self, name: &str, vendor: u16, product: u16, devnum: u16, interface_class: u8) {
        let dev = self.path("sys/bus/usb/devices").join(name);
        let iface = dev.join(format!("{name}:1.0"));
        fs::create_dir_all(&iface).expect("mkdir");
        for (file, value) in [
            ("idVendor", format!("{vendor:04x}")),
            ("idProduct", format!("{product:04x}")),
            ("busnum", "1".into()),
            ("devnum", devnum.to_string()),
            ("manufacturer", "Test Maker".into()),
            ("product", format!("Token {product:04x}")),
        ] {
            fs::write(dev.join(file), format!("{value}\n")).expect("write");
        }
        fs::write(iface.join("bInterfaceClass"), format!("{interface_class:02x}\n")).expect("write");
        let node = self.path("dev/bus/usb/001");
        fs::create_dir_all(&node).expect("mkdir");
        fs::write(node.join(format!("{devnum:03}")), b"").expect("node");
    }

    fn system_catalog(&self, name: &str, toml: &str) {
        fs::write(self.path("etc/catalog.d").join(name), toml).expect("write catalog");
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn of<'a>(findings: &'a [Value], check: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["check"] == check).collect()
}

fn about<'a>(findings: &'a [Value], check: &str, subject: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == check && f["subject"] == subject)
        .unwrap_or_else(|| panic!("no {check} finding about {subject}: {findings:#?}"))
}

fn message(f: &Value) -> &str {
    f["message"].as_str().unwrap_or_default()
}

#[test]
fn every_check_reports_with_stable_fields_and_explains_usb_udev_agent_and_custody() {
    let m = Machine::new();
    m.usb_device("1-2", 0x096e, 0x0807, 5, 0x0B); // Feitian ePass2003, in the seed catalog
    m.usb_device("1-3", 0x1209, 0xBEEF, 6, 0x0B); // a CCID device nobody knows
    m.usb_device("1-4", 0x046d, 0xC077, 7, 0x03); // a mouse: not a carrier
    let findings = m.doctor(&[]);

    for check in ALL_CHECKS {
        assert!(!of(&findings, check).is_empty(), "no finding of {check}: {findings:#?}");
    }
    for f in &findings {
        assert!(["ok", "warn", "fail"].contains(&f["status"].as_str().unwrap_or("")), "{f}");
        assert!(!message(f).is_empty(), "{f}");
        assert_eq!(f["fix"].is_string(), f["status"] != "ok", "a problem comes with its fix: {f}");
    }

    let known = about(&findings, "usb", "USB 1-2 096e:0807");
    assert_eq!(known["status"], "ok");
    assert!(message(known).contains("feitian-epass2003"), "{known}");
    let unknown = about(&findings, "usb", "USB 1-3 1209:beef");
    assert_eq!(unknown["status"], "warn");
    assert!(unknown["fix"].as_str().unwrap().contains("product = 0xbeef"), "{unknown}");
    assert!(findings.iter().all(|f| !message(f).contains("c077")), "a mouse is no carrier");
    let node = m.path("dev/bus/usb/001/005").display().to_string();
    assert_eq!(about(&findings, "permissions", &node)["status"], "ok");

    let udev = of(&findings, "udev-rules");
    assert_eq!(udev[0]["status"], "warn");
    assert!(message(udev[0]).contains("not installed"), "{}", udev[0]);
    let agent = of(&findings, "agent");
    assert_eq!(agent[0]["status"], "warn");
    assert!(agent[0]["fix"].as_str().unwrap().contains("ukey agent --detach"));
    let custody = of(&findings, "custody");
    assert_eq!(custody[0]["status"], "ok");
    assert!(message(custody[0]).contains("no custody policy installed"));

    // Rules generated from the same catalog are complete; a rule removed makes them stale.
    let rules = m.path("rules.d/70-ukey.rules");
    let out = m.command(&["catalog", "udev", "--out", rules.to_str().unwrap()]).output().expect("ukey catalog udev");
    assert!(out.status.success(), "{}", text(&out.stderr));
    fs::write(m.path("etc/policy.toml"), "# a unit's policy\n").expect("policy");
    let findings = m.doctor(&["--check", "udev-rules", "--check", "custody"]);
    assert_eq!(of(&findings, "udev-rules").len(), 1, "{findings:#?}");
    assert_eq!(of(&findings, "udev-rules")[0]["status"], "ok");
    let custody = of(&findings, "custody");
    assert_eq!(custody[0]["status"], "ok", "{custody:#?}");
    assert!(message(custody[0]).contains("is in force") && message(custody[0]).contains("refused"), "{custody:#?}");
    let full = fs::read_to_string(&rules).unwrap();
    let stale: String = full.lines().filter(|l| !l.contains("096e")).map(|l| format!("{l}\n")).collect();
    fs::write(&rules, stale).unwrap();
    let udev = m.doctor(&["--check", "udev-rules"]);
    assert_eq!(udev[0]["status"], "warn");
    assert!(message(&udev[0]).contains("older than the catalog"), "{}", udev[0]);

    // An unknown check is a usage error.
    let out = m.command(&["doctor", "--check", "nonsense"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

const MODULE_ENTRIES: &str = r#"
[[carrier]]
id = "test-vendor-token"
manufacturer = "Test Vendor"
model = "Module Token"
interface = "pkcs11-module"
applications = ["vendor"]
usb = [{ vendor = 0x1209, product = 0x7E57 }]
modules = { linux = ["libukey-test-not-installed.so"] }
sources = ["ukey tests"]
compliance = { compliant = true, reason = "test entry" }

[[carrier]]
id = "test-opensc-token"
manufacturer = "Test Vendor"
model = "OpenSC Token"
interface = "pkcs11-module"
applications = ["pkcs15"]
usb = [{ vendor = 0x1209, product = 0x7E58 }]
modules = { linux = ["opensc-pkcs11.so"] }
sources = ["ukey tests"]
compliance = { compliant = false, reason = "test entry" }
"#;

#[test]
fn missing_vendor_module_is_diagnosed_with_its_name_and_the_fix() {
    let m = Machine::new();
    m.system_catalog("vendor.toml", MODULE_ENTRIES);
    m.usb_device("2-1", 0x1209, 0x7E57, 9, 0xFF);
    m.usb_device("2-2", 0x1209, 0x7E58, 10, 0xFF);
    let findings = m.doctor(&["--check", "usb", "--check", "modules"]);

    let usb = about(&findings, "usb", "USB 2-1 1209:7e57");
    assert_eq!(usb["status"], "ok");
    assert!(message(usb).contains("test-vendor-token"), "{usb}");
    let missing = about(&findings, "modules", "Test Vendor Module Token (1209:7e57)");
    assert_eq!(missing["status"], "fail", "{missing}");
    assert!(message(missing).contains("libukey-test-not-installed.so"), "{missing}");
    assert!(missing["fix"].as_str().unwrap().contains("install the vendor's middleware"), "{missing}");
    // OpenSC's module is installed on the test machine (scripts/apt-packages.txt: opensc).
    let present = about(&findings, "modules", "Test Vendor OpenSC Token (1209:7e58)");
    assert_eq!(present["status"], "ok", "{present}; install opensc (scripts/apt-packages.txt)");
    assert!(message(present).contains("opensc-pkcs11.so"));
}

/// Restores the shared pcscd however the test ends: stops the pcscd the test started and starts
/// the harness's again.
struct RestorePcscd<'a> {
    lease: &'a ReaderLease,
    own: Option<Child>,
}

impl RestorePcscd<'_> {
    fn stop_own(&mut self) {
        if let Some(mut child) = self.own.take() {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Path::new("/run/pcscd/pcscd.comm").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for RestorePcscd<'_> {
    fn drop(&mut self) {
        self.stop_own();
        if let Err(e) = self.lease.start_pcscd() {
            eprintln!("could not restart pcscd after the doctor test: {e}");
        }
    }
}

fn pcscd_answers() -> bool {
    pcsc::Context::establish(pcsc::Scope::User).is_ok()
}

#[test]
fn pcscd_stopped_and_pcscd_without_readers_are_diagnosed() {
    // Stopping pcscd needs everyone else off it: the harness's exclusive lease.
    let lease = ReaderLease::acquire_any_exclusive(LEASE_TIMEOUT)
        .unwrap_or_else(|e| panic!("exclusive pcscd lease: {e}; install pcscd and vsmartcard-vpcd"));
    let mut restore = RestorePcscd { lease: &lease, own: None };
    lease.stop_pcscd().expect("stop pcscd");
    let m = Machine::new();
    let findings = m.doctor(&["--check", "pcscd", "--check", "readers", "--check", "cards"]);
    let pcscd = of(&findings, "pcscd")[0];
    assert_eq!(pcscd["status"], "fail", "{pcscd}");
    assert!(message(pcscd).contains("installed") && message(pcscd).contains("not running"), "{pcscd}");
    assert!(pcscd["fix"].as_str().unwrap().contains("pcscd"), "{pcscd}");
    assert_eq!(of(&findings, "readers")[0]["status"], "fail");
    assert_eq!(of(&findings, "cards")[0]["status"], "warn");

    // A pcscd with no reader configured (no vpcd) and no USB reader: running, but no readers.
    let empty = m.path("reader.conf.d");
    fs::create_dir_all(&empty).unwrap();
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new("pcscd")
            .args(["--foreground", "--config"])
            .arg(&empty)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start pcscd")
    };
    restore.own = Some(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !pcscd_answers() {
        assert!(Instant::now() < deadline, "the reader-less pcscd did not answer within 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let findings = m.doctor(&["--check", "pcscd", "--check", "readers"]);
    assert_eq!(of(&findings, "pcscd")[0]["status"], "ok", "{findings:#?}");
    let readers = of(&findings, "readers")[0];
    assert_eq!(readers["status"], "warn", "{readers}");
    assert!(message(readers).contains("sees no smart card reader"), "{readers}");
    assert!(readers["fix"].as_str().unwrap().contains("libccid"), "{readers}");
    drop(restore);
    assert!(pcscd_answers(), "pcscd is back for the other tests");
}

fn card_entry(atr: Option<&str>) -> String {
    // Replaces the seed's test-card entry (same id): no reader prefix, so only the ATR counts.
    let atr = atr
        .map(|a| format!("atr = [\"{a}\"]"))
        .unwrap_or_else(|| "atr = [\"3B 95 13 81 01 80 73 FF 01 00 0B\"]".into());
    format!(
        r#"
[[carrier]]
id = "ukey-virtual-piv"
manufacturer = "ukey test rig"
model = "virtual PIV card, known by ATR only"
interface = "ccid"
applications = ["piv"]
{atr}
sources = ["ukey doctor tests"]
compliance = {{ compliant = false, reason = "test carrier" }}
"#
    )
}

fn spaced_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn virtual_card_known_by_reader_or_atr_and_an_unknown_atr() {
    let lease = ReaderLease::acquire_any(LEASE_TIMEOUT).unwrap_or_else(|e| panic!("vpcd reader: {e}"));
    let _card = lease.insert(VirtualPiv::new(CardConfig::default()).expect("card")).expect("insert");
    let reader = lease.reader_name();
    let atr = spaced_hex(&ukey_vpiv::ATR);

    // The seed catalog knows vpcd's readers as the test rig.
    let m = Machine::new().only_reader(reader);
    let findings = m.doctor(&["--check", "pcscd", "--check", "readers", "--check", "cards"]);
    assert_eq!(of(&findings, "pcscd")[0]["status"], "ok");
    let readers = of(&findings, "readers");
    assert!(message(readers[0]).contains(reader), "{findings:#?}");
    let card = about(&findings, "cards", reader);
    assert_eq!(card["status"], "ok", "{card}");
    assert!(message(card).contains("ukey-virtual-piv") && message(card).contains("by its reader"), "{card}");
    assert!(message(card).contains(&atr), "{card}");

    // The unit's entry replaces the seed's: without the reader prefix and with another ATR, the
    // card's ATR is unknown — it still has PIV, which the doctor says.
    let m = Machine::new().only_reader(reader);
    m.system_catalog("card.toml", &card_entry(None));
    let findings = m.doctor(&["--check", "cards"]);
    let card = about(&findings, "cards", reader);
    assert_eq!(card["status"], "warn", "{card}");
    assert!(message(card).contains("ATR the catalog does not know") && message(card).contains(&atr), "{card}");
    assert!(message(card).contains("PIV application"), "{card}");
    assert!(card["fix"].as_str().unwrap().contains("catalog.d"), "{card}");

    // With the card's real ATR in the entry it is known by ATR.
    let m = Machine::new().only_reader(reader);
    m.system_catalog("card.toml", &card_entry(Some(&atr)));
    let findings = m.doctor(&["--check", "cards"]);
    let card = about(&findings, "cards", reader);
    assert_eq!(card["status"], "ok", "{card}");
    assert!(message(card).contains("by its ATR"), "{card}");
}

fn pin() -> Credential {
    Credential::Pin(Pin::new("123456").expect("pin"))
}

fn certificate(carrier: &dyn Carrier, slot: u8, cn: &str, not_before: SystemTime, days: u64) {
    let key = carrier
        .generate_key(
            &KeyGenRequest { algorithm: KeyAlgorithm::P256, label: cn.into(), id: Some(ObjectId(vec![slot])) },
            &pin(),
        )
        .expect("keygen");
    let credential = pin();
    let signer = CarrierKeySigner::new(carrier, key.id.clone(), key.public_key.clone().expect("spki"), &credential)
        .expect("signer");
    let options = CertificateOptions {
        not_before: Some(not_before),
        validity: Duration::from_secs(days * 86_400),
        ..CertificateOptions::default()
    };
    let der = self_signed(&signer, &parse_name(&format!("CN={cn}")).expect("name"), &options).expect("certificate");
    carrier.import_certificate(&CertificateImport { der, label: None, id: None }, &pin()).expect("import");
}

#[test]
fn certificates_expiring_soon_or_expired_are_reported() {
    let lease = ReaderLease::acquire_any(LEASE_TIMEOUT).unwrap_or_else(|e| panic!("vpcd reader: {e}"));
    let _card = lease.insert(VirtualPiv::new(CardConfig::default()).expect("card")).expect("insert");
    let reader = lease.reader_name();
    {
        let carrier = ukey_pcsc::open_carrier(
            &ukey_pcsc::PcscContext::new(),
            &std::ffi::CString::new(reader).unwrap(),
            &PivOptions { management_key: Some(ManagementKey::default_key()) },
        )
        .expect("open the card");
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        certificate(&carrier, 0x9A, "expires soon", now - day, 11);
        certificate(&carrier, 0x9C, "expired", now - 40 * day, 10);
        certificate(&carrier, 0x9D, "fine", now - day, 400);
    }
    let m = Machine::new().only_reader(reader);
    let findings = m.doctor(&["--check", "certificates"]);
    let summary = of(&findings, "certificates")[0];
    assert_eq!(summary["status"], "ok");
    assert!(message(summary).starts_with("1 certificate(s) valid"), "{summary}");
    let soon = findings.iter().find(|f| message(f).contains("CN=expires soon")).expect("the expiring certificate");
    assert_eq!(soon["status"], "warn", "{soon}");
    assert!(message(soon).contains("expires in 9 day(s)") || message(soon).contains("expires in 10 day(s)"), "{soon}");
    assert!(soon["fix"].as_str().unwrap().contains("ukey csr"));
    let expired = findings.iter().find(|f| message(f).contains("CN=expired")).expect("the expired certificate");
    assert_eq!(expired["status"], "fail", "{expired}");
    assert!(message(expired).contains("expired on"), "{expired}");
}

#[test]
fn pkcs11_module_loaded_missing_and_not_a_library_are_told_apart() {
    assert!(Path::new(SOFTHSM).is_file(), "{SOFTHSM} is missing: install softhsm2 (scripts/apt-packages.txt)");
    let m = Machine::new();
    let conf = m.softhsm_conf();
    let not_a_library = m.path("libnot-a-module.so");
    fs::write(&not_a_library, "this is text, not a shared library\n").unwrap();
    let bogus = "/nonexistent/ukey-test/libbogus-pkcs11.so";
    let modules = format!("{SOFTHSM}:{bogus}:{}", not_a_library.display());
    let run = |modules: &str| {
        let mut cmd = m.command(&["doctor", "--json", "--check", "pkcs11"]);
        cmd.env("SOFTHSM2_CONF", &conf).env("UKEY_PKCS11_MODULES", modules);
        let out = cmd.output().expect("run ukey");
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}): {} {}", text(&out.stdout), text(&out.stderr)));
        (out.status, json["findings"].as_array().expect("findings").clone())
    };

    let (status, findings) = run(&modules);
    assert_eq!(status.code(), Some(1), "a module that does not load is a failure: {findings:#?}");
    let softhsm = about(&findings, "pkcs11", SOFTHSM);
    assert_eq!(softhsm["status"], "ok", "{softhsm}");
    assert!(message(softhsm).contains("loaded") && message(softhsm).contains("SoftHSM"), "{softhsm}");
    let missing = about(&findings, "pkcs11", bogus);
    assert_eq!(missing["status"], "fail", "{missing}");
    assert!(message(missing).contains("no such file"), "{missing}");
    assert!(missing["fix"].as_str().unwrap().contains("UKEY_PKCS11_MODULES"), "{missing}");
    let text_file = about(&findings, "pkcs11", &not_a_library.display().to_string());
    assert_eq!(text_file["status"], "fail", "{text_file}");
    assert!(message(text_file).contains("not a loadable library"), "{text_file}");

    // SoftHSM alone: all well, exit 0.
    let (status, findings) = run(SOFTHSM);
    assert!(status.success(), "{findings:#?}");
    assert_eq!(findings.len(), 1, "{findings:#?}");

    // A module named in the config file that is not there: the fix points into that file.
    let config = m.path("xdg/ukey/config.toml");
    fs::write(&config, format!("[pkcs11]\np11kit = false\n\n[[pkcs11.modules]]\npath = \"{bogus}\"\n")).unwrap();
    let findings = m.doctor(&["--check", "pkcs11"]);
    let configured = about(&findings, "pkcs11", bogus);
    assert_eq!(configured["status"], "fail", "{configured}");
    let fix = configured["fix"].as_str().unwrap();
    assert!(fix.contains("[[pkcs11.modules]]") && fix.contains(&config.display().to_string()), "{configured}");
}

#[test]
fn soft_store_damaged_token_and_open_permissions_are_diagnosed() {
    use std::os::unix::fs::PermissionsExt;
    let m = Machine::new();
    let findings = m.doctor(&["--check", "soft-store"]);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["status"], "ok");
    assert!(message(&findings[0]).contains("no soft tokens yet"), "{}", findings[0]);

    let out = m
        .command(&["token", "init", "--soft", "--label", "doctor-test"])
        .env("UKEY_SO_PIN", "87654321")
        .env("UKEY_NEW_PIN", "123456")
        .output()
        .expect("ukey token init");
    assert!(out.status.success(), "token init: {}", text(&out.stderr));
    let findings = m.doctor(&["--check", "soft-store"]);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["status"], "ok");
    assert!(message(&findings[0]).contains("1 soft token(s) readable"), "{}", findings[0]);

    // A token file damaged on disk: named, with what to do.
    let store = m.path("soft");
    let token_file = fs::read_dir(&store)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "token"))
        .unwrap_or_else(|| panic!("no .token file in {}", store.display()));
    let mut bytes = fs::read(&token_file).unwrap();
    bytes.truncate(bytes.len() / 2);
    fs::write(&token_file, &bytes).unwrap();
    let findings = m.doctor(&["--check", "soft-store"]);
    let damaged = findings.iter().find(|f| f["status"] == "fail").unwrap_or_else(|| panic!("{findings:#?}"));
    assert!(message(damaged).contains("cannot be read"), "{damaged}");
    assert!(damaged["subject"].as_str().unwrap().contains(token_file.file_name().unwrap().to_str().unwrap()));
    assert!(damaged["fix"].as_str().unwrap().contains("backup"), "{damaged}");

    // A store other accounts may read.
    fs::set_permissions(&store, fs::Permissions::from_mode(0o755)).unwrap();
    let findings = m.doctor(&["--check", "soft-store"]);
    let open = findings
        .iter()
        .find(|f| f["status"] == "fail" && f["subject"] == store.display().to_string())
        .unwrap_or_else(|| panic!("no failure about the store's mode: {findings:#?}"));
    assert!(message(open).contains("mode 755"), "{open}");
    assert!(open["fix"].as_str().unwrap().contains("chmod 700"), "{open}");
}

/// Runs `ukey doctor --json --check agent` in a test agent's environment.
fn doctor_agent(agent: &agent_support::TestAgent) -> (bool, Vec<Value>) {
    let out = agent.ukey().args(["doctor", "--json", "--check", "agent"]).output().expect("run ukey doctor");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {} {}", text(&out.stdout), text(&out.stderr)));
    (out.status.success(), json["findings"].as_array().expect("findings").clone())
}

#[test]
fn running_agent_is_reached_and_its_socket_permissions_are_checked() {
    use std::os::unix::fs::PermissionsExt;
    // A real agent (the agent tests' harness) in its own runtime directory.
    let mut agent = agent_support::TestAgent::start(&[]);
    let (success, findings) = doctor_agent(&agent);
    assert!(success, "{findings:#?}\nagent log:\n{}", agent.log());
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["status"], "ok", "{}", findings[0]);
    let pid = agent.child.as_ref().map(|c| c.id()).expect("agent pid");
    assert!(message(&findings[0]).contains(&format!("pid {pid}")), "{}", findings[0]);
    assert!(message(&findings[0]).contains(&format!("127.0.0.1:{}", agent.port)), "{}", findings[0]);

    // A socket other accounts may connect to is a failure, even though the agent answers.
    fs::set_permissions(&agent.socket, fs::Permissions::from_mode(0o666)).unwrap();
    let (success, findings) = doctor_agent(&agent);
    assert!(!success, "{findings:#?}");
    let socket = about(&findings, "agent", &agent.socket.display().to_string());
    assert_eq!(socket["status"], "fail", "{socket}");
    assert!(message(socket).contains("mode 666"), "{socket}");
    assert!(socket["fix"].as_str().unwrap().contains("ukey agent --detach"), "{socket}");
    fs::set_permissions(&agent.socket, fs::Permissions::from_mode(0o600)).unwrap();

    // Stopped: a warning (the CLI works without it) with how to start it.
    assert!(agent.terminate(), "the agent stops on SIGTERM");
    let (success, findings) = doctor_agent(&agent);
    assert!(success, "{findings:#?}");
    assert_eq!(findings[0]["status"], "warn", "{}", findings[0]);
    assert!(message(&findings[0]).contains("no ukey agent is running"), "{}", findings[0]);
}

const HID_ENTRY: &str = r#"
[[carrier]]
id = "test-hid-piv"
manufacturer = "ukey tests"
model = "HID PIV token"
interface = "hid"
applications = ["piv"]
usb = [{ vendor = 0x1209, product = 0x000C }]
hid_framing = "ctaphid-msg"
sources = ["ukey doctor tests"]
compliance = { compliant = false, reason = "test carrier" }
"#;

/// The user id the permission test runs the doctor as, when the test runs as root (root may
/// open every node, so only another account can meet a closed one): `nobody`.
const NOBODY: &str = "65534";

#[test]
fn a_hidraw_node_the_holder_may_not_open_is_explained_with_the_udev_fix() {
    use std::os::unix::fs::PermissionsExt;
    let m = Machine::new();
    m.system_catalog("hid.toml", HID_ENTRY);
    // A HID token of the unit's catalog at 3-1, with its hidraw node (sysfs and /dev as the
    // kernel lays them out).
    m.usb_device("3-1", 0x1209, 0x000C, 4, 0x03);
    let hid = m.path("sys/bus/usb/devices/3-1/3-1:1.0/0003:1209:000C.0001/hidraw/hidraw7");
    fs::create_dir_all(&hid).unwrap();
    let node = m.path("dev/hidraw7");
    fs::write(&node, b"").unwrap();
    fs::set_permissions(&node, fs::Permissions::from_mode(0o600)).unwrap();
    let as_root = rustix::process::getuid().is_root();
    if as_root {
        // Let `nobody` walk the temporary machine (read only) but not open the node.
        for entry in walk(m.tmp.path()) {
            let mode = if entry.is_dir() { 0o755 } else { 0o644 };
            fs::set_permissions(&entry, fs::Permissions::from_mode(mode)).unwrap();
        }
        fs::set_permissions(&node, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(m.path("dev/bus/usb/001/004"), fs::Permissions::from_mode(0o600)).unwrap();
    } else {
        fs::set_permissions(&node, fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(m.path("dev/bus/usb/001/004"), fs::Permissions::from_mode(0o000)).unwrap();
    }
    let run = || {
        let mut cmd = m.command(&["doctor", "--json", "--check", "usb", "--check", "permissions"]);
        if as_root {
            // setpriv (util-linux) runs the real binary as another account.
            let inner = cmd;
            cmd = Command::new("setpriv");
            cmd.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"]).arg(inner.get_program());
            cmd.args(inner.get_args()).env_clear();
            for (k, v) in inner.get_envs() {
                if let Some(v) = v {
                    cmd.env(k, v);
                }
            }
        }
        let out = cmd.output().expect("run ukey doctor (setpriv is in util-linux)");
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}): {} {}", text(&out.stdout), text(&out.stderr)));
        (out.status, json["findings"].as_array().expect("findings").clone())
    };

    let (status, findings) = run();
    assert_eq!(status.code(), Some(1), "{findings:#?}");
    let usb = about(&findings, "usb", "USB 3-1 1209:000c");
    assert_eq!(usb["status"], "ok", "{usb}");
    assert!(message(usb).contains("test-hid-piv") && message(usb).contains("hid"), "{usb}");
    let closed = about(&findings, "permissions", &node.display().to_string());
    assert_eq!(closed["status"], "fail", "{closed}");
    assert!(message(closed).contains("may not open"), "{closed}");
    assert!(
        closed["fix"].as_str().unwrap().contains("ukey catalog udev"),
        "without rules, the fix installs them: {closed}"
    );
    let usbfs = about(&findings, "permissions", &m.path("dev/bus/usb/001/004").display().to_string());
    assert_eq!(usbfs["status"], "fail", "{usbfs}");

    // With the rules installed the fix is no longer to install them, but to re-plug at the seat.
    let rules = m.path("rules.d/70-ukey.rules");
    let out = m.command(&["catalog", "udev", "--out", rules.to_str().unwrap()]).output().expect("ukey catalog udev");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let installed = fs::read_to_string(&rules).unwrap();
    assert!(installed.contains("1209") && installed.contains("000c"), "the rules cover the unit's HID token");
    fs::set_permissions(&rules, fs::Permissions::from_mode(0o644)).unwrap();
    let (_, findings) = run();
    let closed = about(&findings, "permissions", &node.display().to_string());
    assert_eq!(closed["status"], "fail", "{closed}");
    assert!(closed["fix"].as_str().unwrap().contains("re-insert"), "{closed}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok) {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `ukey tokens --json` of the machine: (label, serial, model, manufacturer) of each carrier.
fn soft_tokens(m: &Machine) -> Vec<(String, String, String, String)> {
    let out = m.command(&["tokens", "--json"]).output().expect("ukey tokens");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let field = |t: &Value, k: &str| t[k].as_str().unwrap_or_default().to_string();
    json["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| (field(t, "label"), field(t, "serial"), field(t, "model"), field(t, "manufacturer")))
        .collect()
}

/// Writes a custody record for a carrier into the machine's registry.
fn register(m: &Machine, token: &(String, String, String, String), holder: &str, account: &str, status: &str) {
    use ukey::policy::record::{CarrierRef, CustodyRecord, Holder, Right, Status};
    let record = CustodyRecord {
        status: match status {
            "suspended" => Status::Suspended,
            "revoked" => Status::Revoked,
            _ => Status::Active,
        },
        status_reason: (status != "active").then(|| "reported lost".to_string()),
        accounts: vec![account.to_string()],
        rights: vec![Right::Sign],
        custodian: holder.into(),
        registered: "2025-03-01T10:00:00Z".into(),
        issued: "2025-03-01T10:00:00Z".into(),
        operator: "test".into(),
        carrier: CarrierRef { serial: token.1.clone(), model: token.2.clone(), manufacturer: token.3.clone() },
        holder: Holder { name: holder.into(), id: "E1".into(), unit: "Finance".into() },
        ..Default::default()
    };
    ukey::policy::store::Registry::new(m.path("etc/custody")).write(&record).expect("write the record");
}

#[test]
fn custody_check_evaluates_the_policy_for_each_carrier_and_this_account() {
    let m = Machine::new();
    // Soft tokens made while no policy is installed (personal mode).
    for label in ["mine", "theirs", "lost", "stray"] {
        let out = m
            .command(&["token", "init", "--soft", "--label", label])
            .env("UKEY_SO_PIN", "87654321")
            .env("UKEY_NEW_PIN", "123456")
            .output()
            .expect("ukey token init");
        assert!(out.status.success(), "token init: {}", text(&out.stderr));
    }
    let findings = m.doctor(&["--check", "custody"]);
    assert!(message(of(&findings, "custody")[0]).contains("personal mode"), "{findings:#?}");
    assert!(findings.iter().any(|f| message(f).contains("4 carrier(s) present")), "{findings:#?}");

    let tokens = soft_tokens(&m);
    let token = |label: &str| tokens.iter().find(|t| t.0 == label).cloned().unwrap_or_else(|| panic!("{tokens:?}"));
    let me = ukey::policy::accounts::Account::current().label();
    register(&m, &token("mine"), "Zhang San", &me, "active");
    register(&m, &token("theirs"), "Li Si", "#4242", "active");
    register(&m, &token("lost"), "Zhang San", &me, "suspended");
    fs::write(m.path("etc/policy.toml"), "mode = \"deny\"\ndevelopment = true\nunit = \"Finance Bureau\"\n").unwrap();

    let findings = m.doctor(&["--check", "custody"]);
    let custody = of(&findings, "custody");
    assert!(message(custody[0]).contains("the custody policy of Finance Bureau is in force"), "{custody:#?}");
    assert!(custody.iter().any(|f| f["status"] == "warn" && message(f).contains("development mode is on")));
    assert!(
        custody
            .iter()
            .any(|f| message(f).contains("3 custody record(s)") && message(f).contains("2 active, 1 suspended")),
        "{custody:#?}"
    );
    let subject = |label: &str| format!("{label} (serial {})", token(label).1);
    let mine = about(&findings, "custody", &subject("mine"));
    assert_eq!(mine["status"], "ok", "{mine}");
    assert!(message(mine).contains(&format!("registered to Zhang San (Finance); you ({me}) may sign")), "{mine}");
    assert!(message(mine).contains("not log in (authenticate), generate a key pair"), "the rights it lacks: {mine}");
    let theirs = about(&findings, "custody", &subject("theirs"));
    assert_eq!(theirs["status"], "fail", "{theirs}");
    assert!(
        message(theirs).contains(&format!("this key is registered to Li Si (Finance); account {me} may not use it"))
    );
    assert!(theirs["fix"].as_str().unwrap().contains("helpdesk rebind"), "{theirs}");
    let lost = about(&findings, "custody", &subject("lost"));
    assert_eq!(lost["status"], "fail", "{lost}");
    assert!(message(lost).contains("its registration is suspended (reported lost)"), "{lost}");
    let stray = about(&findings, "custody", &subject("stray"));
    assert_eq!(stray["status"], "fail", "{stray}");
    assert!(message(stray).contains("is not registered in this machine's custody registry"), "{stray}");
    assert!(stray["fix"].as_str().unwrap().contains(&format!("ukey helpdesk bind --token {}", token("stray").1)));

    // Under `warn`, the unregistered carrier may be used, with a warning.
    fs::write(m.path("etc/policy.toml"), "mode = \"warn\"\ndevelopment = true\n").unwrap();
    let findings = m.doctor(&["--check", "custody"]);
    let stray = about(&findings, "custody", &subject("stray"));
    assert_eq!(stray["status"], "warn", "{stray}");
    assert!(message(stray).contains("not registered"), "{stray}");

    // Outside development mode, the software token is no compliant carrier.
    fs::write(m.path("etc/policy.toml"), "mode = \"deny\"\n").unwrap();
    let findings = m.doctor(&["--check", "custody"]);
    let mine = about(&findings, "custody", &subject("mine"));
    assert_eq!(mine["status"], "fail", "{mine}");
    assert!(message(mine).contains("not a compliant carrier"), "{mine}");

    // A policy with a typo: everything is refused, and the doctor says which key.
    fs::write(m.path("etc/policy.toml"), "mdoe = \"warn\"\n").unwrap();
    let findings = m.doctor(&["--check", "custody"]);
    let broken = of(&findings, "custody")[0];
    assert_eq!(broken["status"], "fail", "{broken}");
    assert!(message(broken).contains("is not valid") && message(broken).contains("mdoe"), "{broken}");
    assert!(broken["fix"].as_str().unwrap().contains("policy.toml"), "{broken}");
    let mine = about(&findings, "custody", &subject("mine"));
    assert_eq!(mine["status"], "fail", "with a broken policy nothing may be used: {mine}");
}

#[test]
fn custody_check_verifies_the_audit_log_and_finds_it_unwritable() {
    let m = Machine::new();
    let audit = m.path("home/.local/state/ukey/audit");
    let findings = m.doctor(&["--check", "custody"]);
    let log = findings.iter().find(|f| message(f).contains("audit log")).unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(log["status"], "ok", "{log}");
    assert!(message(log).contains("no audit log yet"), "{log}");

    // A use (the key generation; making the token is not a use of a carrier) puts records on the
    // log; the chain verifies.
    let out = m
        .command(&["token", "init", "--soft", "--label", "audited"])
        .env("UKEY_SO_PIN", "87654321")
        .env("UKEY_NEW_PIN", "123456")
        .output()
        .expect("ukey token init");
    assert!(out.status.success(), "token init: {}", text(&out.stderr));
    let out = m
        .command(&["keygen", "--token", "audited", "--alg", "p256", "--label", "k"])
        .env("UKEY_PIN", "123456")
        .output()
        .expect("ukey keygen");
    assert!(out.status.success(), "keygen: {}", text(&out.stderr));
    let findings = m.doctor(&["--check", "custody"]);
    let log = findings.iter().find(|f| message(f).contains("audit log")).unwrap();
    assert_eq!(log["status"], "ok", "{log}");
    assert!(message(log).contains("its chain verifies"), "{log}");

    // A record edited: the doctor fails and says where.
    let file = fs::read_dir(&audit)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .unwrap_or_else(|| panic!("no log file in {}", audit.display()));
    let original = fs::read_to_string(&file).unwrap();
    fs::write(&file, original.replacen("\"event\":\"intent\"", "\"event\":\"notice\"", 1)).unwrap();
    let findings = m.doctor(&["--check", "custody"]);
    let log = findings.iter().find(|f| message(f).contains("audit log")).unwrap();
    assert_eq!(log["status"], "fail", "{log}");
    assert!(message(log).contains("does not verify") && message(log).contains("line 1"), "{log}");
    assert!(log["fix"].as_str().unwrap().contains("ukey audit verify"), "{log}");
    fs::write(&file, original).unwrap();

    // A read-only audit directory: every use would be refused.
    assert!(
        rustix::process::geteuid().is_root(),
        "mounting a read-only tmpfs needs root; run the tests as root, as CI does"
    );
    let status = Command::new("mount").args(["-o", "bind,ro"]).arg(&audit).arg(&audit).status().expect("mount");
    assert!(status.success(), "bind-mounting the audit directory read-only failed");
    let findings = m.doctor(&["--check", "custody"]);
    let _ = Command::new("umount").arg(&audit).status();
    let log = findings.iter().find(|f| message(f).contains("audit log")).unwrap();
    assert_eq!(log["status"], "fail", "{log}");
    assert!(message(log).contains("is not writable") && message(log).contains("every carrier use is refused"), "{log}");
}
