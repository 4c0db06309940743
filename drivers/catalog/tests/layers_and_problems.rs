//! System and user catalog directories: overrides by id (user over system over seed), and every
//! kind of bad file or entry reported with file, line and entry id while the rest still loads.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use ukey_catalog::{CatalogDirs, CatalogProblem, Layer, ProblemKind, Severity, load};

struct Dirs {
    _tmp: TempDir,
    system: PathBuf,
    user: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let system = tmp.path().join("etc/ukey/catalog.d");
    let user = tmp.path().join("home/.config/ukey/catalog.d");
    fs::create_dir_all(&system).unwrap();
    fs::create_dir_all(&user).unwrap();
    Dirs { _tmp: tmp, system, user }
}

impl Dirs {
    fn catalog_dirs(&self) -> CatalogDirs {
        CatalogDirs::new(Some(self.system.clone()), Some(self.user.clone()))
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// A valid entry with the given id and USB product id, for building test files.
fn entry(id: &str, model: &str, product: u16) -> String {
    format!(
        r#"
[[carrier]]
id = "{id}"
manufacturer = "Test Unit"
model = "{model}"
interface = "ccid"
usb = [{{ vendor = 0xF00D, product = 0x{product:04X} }}]
sources = ["written by the test"]
compliance = {{ compliant = true, reason = "test entry" }}
"#
    )
}

fn errors(problems: &[CatalogProblem]) -> Vec<&CatalogProblem> {
    problems.iter().filter(|p| p.is_error()).collect()
}

fn only_problem(problems: &[CatalogProblem]) -> &CatalogProblem {
    assert_eq!(problems.len(), 1, "expected one problem, got:\n{}", render(problems));
    &problems[0]
}

fn render(problems: &[CatalogProblem]) -> String {
    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}

#[test]
fn user_overrides_system_overrides_seed() {
    let d = dirs();
    // The unit marks the virtual test card as compliant (say, for a demo lab) and adds a model;
    // the holder overrides the unit's new model again.
    write(
        &d.system,
        "10-unit.toml",
        &format!(
            "{}{}",
            entry("acme-token", "Token (unit's entry)", 0x0001),
            r#"
[[carrier]]
id = "ukey-virtual-piv"
manufacturer = "ukey test rig"
model = "virtual PIV card, demo lab"
interface = "ccid"
readers = ["Virtual PCD"]
sources = ["unit policy"]
compliance = { compliant = true, reason = "demo lab" }
"#
        ),
    );
    write(&d.user, "mine.toml", &entry("acme-token", "Token (holder's entry)", 0x0002));
    let (catalog, problems) = load(&d.catalog_dirs());
    assert!(problems.is_empty(), "{}", render(&problems));

    let acme = catalog.entry("acme-token").unwrap();
    assert_eq!(acme.model, "Token (holder's entry)");
    assert_eq!(acme.origin.layer, Layer::User);
    assert_eq!(catalog.match_usb(0xF00D, 0x0002).unwrap().id, "acme-token");
    assert!(catalog.match_usb(0xF00D, 0x0001).is_none(), "the overridden entry's USB id is gone");

    let virt = catalog.entry("ukey-virtual-piv").unwrap();
    assert_eq!(virt.origin.layer, Layer::System);
    assert!(virt.is_compliant());
    assert!(virt.atr.is_empty(), "an override replaces the whole seed entry");
    assert_eq!(catalog.match_reader("Virtual PCD 00 00").unwrap().model, "virtual PIV card, demo lab");

    // Untouched seed entries are still there.
    assert_eq!(catalog.entry("yubico-yubikey-5").unwrap().origin.layer, Layer::Seed);
    assert!(catalog.files().iter().any(|f| f.ends_with("10-unit.toml")));
    assert!(catalog.files().iter().any(|f| f.ends_with("mine.toml")));
}

#[test]
fn system_overrides_seed_without_user_dir() {
    let d = dirs();
    write(&d.system, "yubikey.toml", &entry("yubico-yubikey-5", "YubiKey, unit's view", 0x0404));
    let (catalog, problems) = load(&CatalogDirs::new(Some(d.system.clone()), None));
    assert!(problems.is_empty(), "{}", render(&problems));
    assert_eq!(catalog.entry("yubico-yubikey-5").unwrap().model, "YubiKey, unit's view");
}

#[test]
fn missing_directories_and_other_files_are_fine() {
    let d = dirs();
    write(&d.user, "notes.txt", "not a catalog file");
    write(&d.user, "old.toml.bak", "[[carrier]] broken");
    let missing = d.system.join("nope");
    let (catalog, problems) = load(&CatalogDirs::new(Some(missing), Some(d.user.clone())));
    assert!(problems.is_empty(), "{}", render(&problems));
    assert!(catalog.entry("generic-piv").is_some());
}

#[test]
fn malformed_file_names_file_and_line_and_the_rest_loads() {
    let d = dirs();
    let good = write(&d.system, "10-good.toml", &entry("acme-good", "Good", 0x0010));
    let broken =
        write(&d.system, "20-broken.toml", "# a comment\n[[carrier]]\nid = \"acme-broken\"\nmodel = \"unterminated\n");
    write(&d.user, "user.toml", &entry("acme-user", "User", 0x0011));
    let (catalog, problems) = load(&d.catalog_dirs());

    let p = only_problem(&problems);
    assert_eq!(p.file, broken);
    assert_eq!(p.line, Some(4), "{p}");
    assert!(matches!(p.kind, ProblemKind::Syntax(_)), "{p}");
    let text = p.to_string();
    assert!(text.starts_with(&format!("{}:4: error: not valid TOML", broken.display())), "{text}");

    assert!(catalog.entry("acme-broken").is_none());
    assert!(catalog.entry("acme-good").is_some(), "{} still loads", good.display());
    assert!(catalog.entry("acme-user").is_some());
    assert!(catalog.entry("yubico-yubikey-5").is_some());
}

#[test]
fn duplicate_id_in_one_layer() {
    let d = dirs();
    let a = write(&d.system, "a.toml", &entry("acme-dup", "First", 0x0020));
    let b = write(&d.system, "b.toml", &format!("\n\n{}", entry("acme-dup", "Second", 0x0021)));
    let (catalog, problems) = load(&d.catalog_dirs());
    let p = only_problem(&problems);
    assert_eq!((p.file.as_path(), p.line, p.entry.as_deref()), (b.as_path(), Some(4), Some("acme-dup")));
    let ProblemKind::DuplicateId { id, first } = &p.kind else { panic!("{p}") };
    assert_eq!(id, "acme-dup");
    assert_eq!(first, &format!("{}:2", a.display()));
    assert!(p.to_string().contains("duplicate id `acme-dup`"), "{p}");
    assert_eq!(catalog.entry("acme-dup").unwrap().model, "First");
}

#[test]
fn duplicate_id_within_one_file() {
    let d = dirs();
    let f = write(
        &d.user,
        "dups.toml",
        &format!("{}{}", entry("acme-dup", "First", 0x0030), entry("acme-dup", "Second", 0x0031)),
    );
    let (_, problems) = load(&d.catalog_dirs());
    let p = only_problem(&problems);
    assert_eq!((p.file.as_path(), p.line), (f.as_path(), Some(11)));
    assert!(matches!(p.kind, ProblemKind::DuplicateId { .. }));
}

/// Writes `good` + one bad entry + `good2` and checks the bad one is reported with its line and
/// id while both good ones load.
fn bad_entry(body: &str) -> (CatalogProblem, Vec<CatalogProblem>) {
    let d = dirs();
    let text = format!(
        "{}\n[[carrier]]\nid = \"acme-bad\"\nmanufacturer = \"Test Unit\"\nmodel = \"Bad\"\nsources = [\"test\"]\ncompliance = {{ compliant = false, reason = \"test\" }}\n{body}\n{}",
        entry("acme-before", "Before", 0x0040),
        entry("acme-after", "After", 0x0041),
    );
    let file = write(&d.system, "mixed.toml", &text);
    let (catalog, problems) = load(&d.catalog_dirs());
    assert!(catalog.entry("acme-before").is_some() && catalog.entry("acme-after").is_some(), "{}", render(&problems));
    assert!(catalog.entry("acme-bad").is_none());
    let errs = errors(&problems);
    assert!(!errs.is_empty(), "no error reported");
    for p in &errs {
        assert_eq!(p.file, file);
        assert_eq!(p.entry.as_deref(), Some("acme-bad"), "{p}");
        assert!(p.line.is_some_and(|l| l >= 11), "{p}");
    }
    (errs[0].clone(), problems)
}

#[test]
fn bad_atr_mask() {
    let (p, _) = bad_entry("interface = \"ccid\"\natr = [{ value = \"3B:7F:96\", mask = \"FF:FF\" }]");
    assert_eq!(p.line, Some(18), "the line of the atr value: {p}");
    assert!(
        p.to_string().contains("bad ATR pattern `3B:7F:96 / FF:FF`: the mask has 2 bytes but the value has 3"),
        "{p}"
    );

    let (p, _) = bad_entry("interface = \"ccid\"\natr = [\"3B 8F 8G\"]");
    assert!(p.to_string().contains("byte 3 `8G` is not two hex digits"), "{p}");
    let (p, _) = bad_entry("interface = \"ccid\"\natr = [\"3B .* 01\"]");
    assert!(matches!(p.kind, ProblemKind::BadAtr { .. }), "pcsc-tools regex beyond '.' is refused: {p}");
    let (p, _) = bad_entry("interface = \"ccid\"\natr = [\".. ..\"]");
    assert!(p.to_string().contains("would match every ATR"), "{p}");
}

#[test]
fn unknown_interface() {
    let (p, _) = bad_entry("interface = \"usb-hid\"\nusb = [{ vendor = 1, product = 2 }]");
    assert_eq!(p.line, Some(17));
    assert_eq!(
        p.to_string().split(": error: ").nth(1).unwrap(),
        "entry `acme-bad`: unknown interface `usb-hid`; expected one of: ccid, hid, pkcs11-module, software"
    );
}

#[test]
fn vendor_id_out_of_range() {
    let (p, _) = bad_entry("interface = \"ccid\"\nusb = [{ vendor = 0x1FFFF, product = 0x0001 }]");
    assert!(p.to_string().contains("USB vendor id 131071 is out of range (0x0000 to 0xFFFF)"), "{p}");
    let (p, _) = bad_entry("interface = \"ccid\"\nusb = [{ vendor = 0x1050, product = -1 }]");
    assert!(p.to_string().contains("USB product id -1 is out of range"), "{p}");
}

#[test]
fn missing_required_field() {
    let (p, all) = bad_entry("atr = [\"3B 00\"]");
    assert_eq!(p.line, Some(11), "a missing field is reported at the entry's header");
    assert!(p.to_string().contains("missing required field `interface`"), "{p}");
    assert_eq!(errors(&all).len(), 1);
}

#[test]
fn unknown_field_and_wrong_type() {
    let (p, _) = bad_entry("interface = \"ccid\"\natr = [\"3B 00\"]\ncolour = \"red\"");
    assert_eq!(p.line, Some(19), "{p}");
    assert!(p.to_string().contains("unknown field `colour`"), "{p}");
    let (p, _) = bad_entry("interface = \"ccid\"\nusb = [{ vendor = \"1050\", product = 1 }]");
    assert!(matches!(p.kind, ProblemKind::Field(_)), "{p}");
}

#[test]
fn more_schema_rules() {
    let cases = [
        ("interface = \"hid\"\nusb = [{ vendor = 1, product = 2 }]", "needs `hid_framing`"),
        (
            "interface = \"ccid\"\nusb = [{ vendor = 1, product = 2 }]\nhid_framing = \"ctaphid-msg\"",
            "only for entries with interface = \"hid\"",
        ),
        (
            "interface = \"hid\"\nusb = [{ vendor = 1, product = 2 }]\nhid_framing = \"morse\"",
            "unknown HID framing `morse`",
        ),
        ("interface = \"ccid\"", "the entry has no identifier"),
        ("interface = \"ccid\"\natr = [\"3B 00\"]\napplications = [\"fido\"]", "unknown application `fido`"),
        ("interface = \"ccid\"\natr = [\"3B 00\"]\naids = [\"A0 00\"]", "bad AID"),
        (
            "interface = \"pkcs11-module\"\nmodules = { linux = [\"/usr/lib/libx.so\"] }",
            "must be a file name without a directory",
        ),
        (
            "interface = \"ccid\"\natr = [\"3B 00\"]\n[carrier.sm2]\nsigns = \"hash\"\nsource = \"x\"",
            "unknown SM2 input `hash`",
        ),
        (
            "interface = \"ccid\"\natr = [\"3B 00\"]\n[carrier.sm2]\nsigns = \"digest\"",
            "missing required field `sm2.source`",
        ),
        (
            "interface = \"ccid\"\natr = [\"3B 00\"]\n[carrier.pin]\nmin_length = 8\nmax_length = 4\nsource = \"x\"",
            "min_length 8 is above max_length 4",
        ),
        (
            "interface = \"ccid\"\natr = [\"3B 00\"]\n[carrier.pin]\ntries = 0\nsource = \"x\"",
            "tries = 0 is not between 1 and 255",
        ),
    ];
    for (body, expected) in cases {
        let (p, _) = bad_entry(body);
        assert!(p.to_string().contains(expected), "{body}: expected `{expected}`, got {p}");
    }
}

#[test]
fn entry_problems_without_an_id_and_bad_ids() {
    let d = dirs();
    let f = write(
        &d.user,
        "x.toml",
        "[[carrier]]\nmanufacturer = \"M\"\nmodel = \"X\"\ninterface = \"ccid\"\natr = [\"3B 00\"]\nsources = [\"s\"]\ncompliance = { compliant = false, reason = \"r\" }\n\n[[carrier]]\nid = \"Bad Id\"\nmanufacturer = \"M\"\nmodel = \"X\"\ninterface = \"ccid\"\natr = [\"3B 01\"]\nsources = [\"s\"]\ncompliance = { compliant = false, reason = \"r\" }\n",
    );
    let (_, problems) = load(&d.catalog_dirs());
    assert_eq!(problems.len(), 2, "{}", render(&problems));
    assert_eq!((problems[0].line, problems[0].entry.as_deref()), (Some(1), None));
    assert!(problems[0].to_string().contains("missing required field `id`"));
    assert_eq!(problems[1].file, f);
    assert_eq!((problems[1].line, problems[1].entry.as_deref()), (Some(10), Some("Bad Id")));
    assert!(problems[1].to_string().contains("must be lower-case letters"));
}

#[test]
fn unknown_top_level_key_is_a_warning_and_carrier_must_be_tables() {
    let d = dirs();
    write(&d.user, "a.toml", &format!("[[carriers]]\nid = \"typo\"\n{}", entry("acme-ok", "Ok", 0x0050)));
    write(&d.system, "b.toml", "carrier = \"not tables\"\n");
    let (catalog, problems) = load(&d.catalog_dirs());
    assert!(catalog.entry("acme-ok").is_some());
    let warning = problems.iter().find(|p| p.severity == Severity::Warning).unwrap();
    assert!(warning.to_string().contains("unknown top-level key `carriers`"), "{warning}");
    assert_eq!(warning.line, Some(1));
    let error = problems.iter().find(|p| p.is_error()).unwrap();
    assert!(matches!(error.kind, ProblemKind::CarrierNotTables), "{error}");
}

#[test]
fn shadowed_usb_id_is_a_warning() {
    let d = dirs();
    // Two unit entries claim the YubiKey's USB id: the system layer wins over the seed, and of
    // two system entries the lower id wins.
    write(
        &d.system,
        "a.toml",
        &format!(
            "{}{}",
            entry("acme-a", "A", 0x0001).replace("0xF00D, product = 0x0001", "0x1050, product = 0x0407"),
            entry("acme-b", "B", 0x0001).replace("0xF00D, product = 0x0001", "0x1050, product = 0x0407"),
        ),
    );
    let (catalog, problems) = load(&d.catalog_dirs());
    assert_eq!(catalog.match_usb(0x1050, 0x0407).unwrap().id, "acme-a");
    let warnings: Vec<String> = problems.iter().filter(|p| !p.is_error()).map(|p| p.to_string()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("entry `acme-b`: USB id 1050:0407 is also claimed by entry `acme-a`")));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("entry `yubico-yubikey-5`: USB id 1050:0407 is also claimed by entry `acme-a`"))
    );
    assert!(errors(&problems).is_empty());
}

#[test]
fn unreadable_inputs() {
    let d = dirs();
    let big = write(&d.system, "big.toml", &"# padding\n".repeat(110_000));
    let binary = d.user.join("bin.toml");
    fs::write(&binary, [0xFF, 0xFE, 0x00, 0x80]).unwrap();
    let (catalog, problems) = load(&d.catalog_dirs());
    assert_eq!(problems.len(), 2, "{}", render(&problems));
    assert!(problems.iter().any(|p| p.file == big && matches!(p.kind, ProblemKind::TooLarge { .. })));
    assert!(problems.iter().any(|p| p.file == binary && p.to_string().contains("not UTF-8")));
    assert!(catalog.entry("generic-piv").is_some());
}
