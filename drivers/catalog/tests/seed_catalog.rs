//! The embedded seed catalog: every entry loads and validates, and its ATR patterns, USB ids,
//! module names and reader prefixes pick the right model for real identifiers — and nothing for
//! near misses. ATRs are quoted from pcsc-tools' smartcard_list.txt (Debian 12, "SCL" with its
//! line number) and from OpenSC's card-idprime.c comments.

use std::collections::BTreeSet;

use ukey_catalog::{Application, Catalog, Interface, load_seed, seed_file_names};

fn seed() -> Catalog {
    let (catalog, problems) = load_seed();
    assert!(problems.is_empty(), "the seed catalog has problems:\n{}", join(&problems));
    catalog
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}

fn atr(text: &str) -> Vec<u8> {
    text.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

fn atr_match(catalog: &Catalog, text: &str) -> Option<String> {
    catalog.match_atr(&atr(text)).map(|e| e.id.clone())
}

#[test]
fn every_data_file_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    let embedded: BTreeSet<String> = seed_file_names().map(String::from).collect();
    assert_eq!(on_disk, embedded, "list every data/*.toml in src/seed.rs");
}

#[test]
fn every_seed_entry_loads_and_validates() {
    let catalog = seed();
    let expected = [
        "feitian-biopass-k27",
        "feitian-epass2003",
        "feitian-epass3003-auto",
        "generic-piv",
        "longmai-mtoken-cryptoid",
        "longmai-mtoken-gm3000",
        "nitrokey-3",
        "nitrokey-pro",
        "nitrokey-start",
        "thales-etoken-5110",
        "thales-etoken-5110-plus-fips",
        "thales-idprime-md",
        "ukey-soft",
        "ukey-virtual-piv",
        "watchdata-usb-key",
        "watchdata-w5181",
        "yubico-yubikey-5",
    ];
    let ids: Vec<&str> = catalog.entries_by_id().iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, expected);
    for entry in catalog.entries() {
        assert!(!entry.sources.is_empty(), "{} has no sources", entry.id);
        assert!(!entry.compliance.reason.is_empty(), "{} gives no compliance reason", entry.id);
        assert!(entry.origin.file.to_string_lossy().starts_with("seed:"), "{}", entry.id);
        assert_eq!(entry.interface == Interface::Hid, entry.hid_framing.is_some(), "{}", entry.id);
        if entry.interface != Interface::Software {
            let identified = !entry.usb.is_empty()
                || !entry.atr.is_empty()
                || !entry.readers.is_empty()
                || entry.modules.all().next().is_some()
                || entry.fallback.is_some();
            assert!(identified, "{} cannot be recognised", entry.id);
        }
    }
}

#[test]
fn test_and_software_carriers_are_not_compliant() {
    let catalog = seed();
    for id in ["ukey-soft", "ukey-virtual-piv", "generic-piv"] {
        let entry = catalog.entry(id).unwrap();
        assert!(!entry.is_compliant(), "{id} must not be a compliant carrier");
    }
    assert!(catalog.entry("feitian-epass2003").unwrap().is_compliant());
    assert_eq!(catalog.entry("ukey-soft").unwrap().interface, Interface::Software);
}

#[test]
fn known_atrs_match_their_models() {
    let catalog = seed();
    let cases = [
        // SCL 9325 "ePass2003 (PKI)"
        ("3B 9F 95 81 31 FE 9F 00 66 46 53 05 10 04 31 71 DF 00 00 00 00 00 26", "feitian-epass2003"),
        // SCL 9353 "Feitian USB Cryptographic token (FIPS 140-2 Level 3)"
        ("3B 9F 95 81 31 FE 9F 00 66 46 53 05 23 00 25 71 DF 00 00 03 90 00 96", "feitian-epass2003"),
        // SCL 9368 "Epass2003 (PKI)"
        ("3B 9F 95 81 31 FE 9F 00 66 46 53 05 51 00 33 71 DF 00 00 06 00 00 67", "feitian-epass2003"),
        // SCL 9357 "ePass 3003 Auto (PKI)": also inside the ePass2003 family pattern; the exact
        // ATR is more specific and wins.
        ("3B 9F 95 81 31 FE 9F 00 66 46 53 05 32 02 25 71 DF 00 00 06 00 00 10", "feitian-epass3003-auto"),
        // SCL 8253 "Feitian Biopass K27 (PKI)"
        ("3B 9C 95 81 31 FE 9F 90 67 46 4A 01 02 53 05 01 72 FE 00 FB", "feitian-biopass-k27"),
        // SCL 8861, 8865 Longmai mToken CryptoID
        ("3B 9F 11 81 31 FE 9F 00 6A 6D 54 6F 6B 65 6E 2D 46 00 00 81 90 00 79", "longmai-mtoken-cryptoid"),
        ("3B 9F 11 81 31 FE 9F 00 6A 6D 54 6F 6B 65 6E 2D 50 00 05 81 90 00 6A", "longmai-mtoken-cryptoid"),
        // SCL 3190 "Watchdata USB Key (PKI)", 3212 "WATCHDATA USB KEY"
        ("3B 6E 00 00 57 44 36 19 69 86 93 02 21 18 15 50 20 27", "watchdata-usb-key"),
        ("3B 6E 00 00 57 44 36 19 69 86 93 02 35 11 75 42 16 30", "watchdata-usb-key"),
        // SCL 12745 "Yubico YubiKey 5 NFC (PKI)", 7207 "Yubikey 5 NFC (via NFC)"
        ("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40", "yubico-yubikey-5"),
        ("3B 8D 80 01 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 F9", "yubico-yubikey-5"),
        // SCL 10851 "Nitrokey Start", 6742 "Nitrokey 3C NFC"
        ("3B DA 11 FF 81 B1 FE 55 1F 03 00 31 84 73 80 01 80 05 90 00 E1", "nitrokey-start"),
        ("3B 8C 01 80 5A 4E 69 74 72 6F 6B 65 79 20 33 7D", "nitrokey-3"),
        // SCL 5493 "Gemalto IDPrime MD 840 (PKI)", 5460 "Gemalto IDPrime MD"
        ("3B 7F 96 00 00 80 31 80 65 B0 85 03 00 EF 12 0F FE 82 90 00", "thales-idprime-md"),
        ("3B 7F 96 00 00 80 31 80 65 B0 84 41 3D F6 12 0F FE 82 90 00", "thales-idprime-md"),
        // SCL 5531 "Gemalto USB (eID)": an IDPrime 940, through OpenSC's 940 pattern
        ("3B 7F 96 00 00 80 31 80 65 B0 85 59 56 FB 12 02 C1 82 90 00", "thales-idprime-md"),
        // OpenSC card-idprime.c: eToken 5110 ATRs reported by users
        ("3B FF 96 00 00 81 31 FE 43 80 31 80 65 B0 85 59 56 FB 12 0F FE 82 90 00 00", "thales-etoken-5110"),
        ("3B FF 96 00 00 81 31 FE 43 80 31 80 65 B0 85 59 56 FB 12 01 78 82 90 00 88", "thales-etoken-5110"),
        // OpenSC card-idprime.c: eToken 5110+ FIPS
        ("3B FF 96 00 00 81 31 FE 43 80 31 80 65 B0 84 65 66 FB 12 01 78 82 90 00 85", "thales-etoken-5110-plus-fips"),
        // vpicc 0.1.0 DEFAULT_ATR (ukey's virtual test card)
        ("3B 95 13 81 01 80 73 FF 01 00 0B", "ukey-virtual-piv"),
    ];
    for (text, id) in cases {
        assert_eq!(atr_match(&catalog, text).as_deref(), Some(id), "ATR {text}");
    }
}

#[test]
fn near_miss_atrs_match_nothing() {
    let catalog = seed();
    let cases = [
        // SCL 9314 Feitian FTCOS/PK-01C card: byte 8 is 65, the ePass2003 family has 66
        "3B 9F 95 81 31 FE 9F 00 65 46 53 05 30 06 71 DF 00 00 00 80 6A 82 5E",
        // SCL 3182 Watchdata Brazil CSP v1.0: byte 7 is 13, the USB key family has 19
        "3B 6E 00 00 57 44 36 13 69 86 93 02 32 12 56 28 25 32",
        // SCL 12236 YubiKey 4: shares the USB ids, not the ATR
        "3B F8 13 00 00 81 31 FE 15 59 75 62 69 6B 65 79 34 D4",
        // SCL 7211 YubiKey 5 NFC through an ACR122U (historical bytes mangled by the reader)
        "3B 8D 80 01 80 73 C0 21 C0 57 59 75 62 69 4B 65 FF 7F",
        // SCL 10847 Gnuk token: one byte from the Nitrokey Start
        "3B DA 11 FF 81 B1 FE 55 1F 03 00 31 84 73 80 01 80 00 90 00 E4",
        // SCL 4925 IDPrime PIV Card 2.0: another length and layout
        "3B 7D 96 00 00 80 31 80 65 B0 83 11 17 E5 83 00 90 00",
        // Nitrokey 3 with the check byte changed
        "3B 8C 01 80 5A 4E 69 74 72 6F 6B 65 79 20 33 7E",
        // IDPrime MD 840 with byte 17 changed (82 -> 83)
        "3B 7F 96 00 00 80 31 80 65 B0 85 03 00 EF 12 0F FE 83 90 00",
        // ePass2003 ATR one byte short, and one byte long
        "3B 9F 95 81 31 FE 9F 00 66 46 53 05 10 04 31 71 DF 00 00 00 00 00",
        "3B 9F 95 81 31 FE 9F 00 66 46 53 05 10 04 31 71 DF 00 00 00 00 00 26 00",
        // the virtual card's ATR with one bit flipped
        "3B 95 13 81 01 80 73 FF 01 00 0A",
    ];
    for text in cases {
        assert_eq!(atr_match(&catalog, text), None, "ATR {text} must not match");
    }
    assert!(catalog.match_atr(&[]).is_none());
    assert!(catalog.match_atr(&[0x3B; 40]).is_none(), "longer than any ATR");
}

#[test]
fn usb_ids_modules_readers_and_fallbacks() {
    let catalog = seed();
    let usb = |v, p| catalog.match_usb(v, p).map(|e| e.id.as_str());
    assert_eq!(usb(0x1050, 0x0407), Some("yubico-yubikey-5"));
    assert_eq!(usb(0x096E, 0x0807), Some("feitian-epass2003"));
    assert_eq!(usb(0x20A0, 0x4211), Some("nitrokey-start"));
    assert_eq!(usb(0x08E6, 0x34CF), Some("thales-etoken-5110-plus-fips"));
    assert_eq!(usb(0x163C, 0x0A03), Some("watchdata-w5181"));
    // USBIDS "Yubikey (v1 or v2)" (no CCID) and Feitian's "HID Dongle": not carriers we know
    assert_eq!(usb(0x1050, 0x0010), None);
    assert_eq!(usb(0x096E, 0x0006), None);

    let module = |m| catalog.match_module(m).map(|e| e.id.as_str());
    assert_eq!(module("libykcs11.so"), Some("yubico-yubikey-5"));
    assert_eq!(module("/usr/lib/x86_64-linux-gnu/libykcs11.so"), Some("yubico-yubikey-5"));
    assert_eq!(module("./libgm3000_pkcs11.so"), Some("longmai-mtoken-gm3000"));
    // shared modules identify no model
    assert_eq!(module("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"), None);
    assert_eq!(module("/usr/lib/softhsm/libsofthsm2.so"), None);

    let reader = |r| catalog.match_reader(r).map(|e| e.id.as_str());
    assert_eq!(reader("Virtual PCD 00 00"), Some("ukey-virtual-piv"));
    assert_eq!(reader("Virtual PCD 00 01"), Some("ukey-virtual-piv"));
    assert_eq!(reader("Yubico YubiKey OTP+FIDO+CCID 00 00"), None);

    assert_eq!(catalog.fallback(Application::Piv).map(|e| e.id.as_str()), Some("generic-piv"));
    assert_eq!(catalog.fallback(Application::Openpgp), None);
    let piv_aid = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
    assert_eq!(catalog.fallback(Application::Piv).unwrap().aids, vec![piv_aid.to_vec()]);
    assert!(catalog.entry("no-such-model").is_none());
}

#[test]
fn sourced_facts_are_carried_through() {
    let catalog = seed();
    let yubikey = catalog.entry("yubico-yubikey-5").unwrap();
    let pin = yubikey.pin.as_ref().unwrap();
    assert_eq!((pin.min_length, pin.max_length, pin.tries), (Some(6), Some(8), Some(3)));
    assert_eq!(yubikey.applications, vec![Application::Piv, Application::Openpgp]);
    let soft = catalog.entry("ukey-soft").unwrap();
    assert_eq!(soft.sm2.as_ref().map(|s| s.signs), Some(ukey_catalog::Sm2Input::Digest));
    let epass = catalog.entry("feitian-epass2003").unwrap();
    assert!(epass.certification.iter().any(|c| c.scheme.contains("FIPS 140-2")));
    // an OpenSC value/mask pattern reads back in pcsc-tools form (as listings and JSON show it)
    let patterns: Vec<String> = epass.atr.iter().map(|p| p.to_string()).collect();
    assert_eq!(patterns, ["3B 9F 95 81 31 FE 9F 00 66 46 53 05 .. .. .. 71 DF 00 00 .. .. .. .."]);
}
