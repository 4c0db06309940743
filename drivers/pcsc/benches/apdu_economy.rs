//! APDU economy: how many APDUs ukey and OpenSC send to the same virtual PIV card for
//! "list certificates, then sign once" and for "sign again", counted by the card itself.
//!
//!     cargo bench -p ukey-pcsc --bench apdu_economy
//!
//! Real cards spend 5–20 ms per APDU, so this count is the latency people feel. Goal: ukey sends
//! at most half as many as OpenSC's `pkcs11-tool` with `opensc-pkcs11.so`.

use std::ffi::CString;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};
use ukey_api::crypto::{CarrierKeySigner, CertificateOptions, parse_name, self_signed};
use ukey_api::{
    Carrier, CertificateImport, Credential, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId, Pin, SignInput,
};
use ukey_iso7816::PivOptions;
use ukey_iso7816::piv::ManagementKey;
use ukey_pcsc::{PcscContext, open_carrier};
use ukey_vpiv::harness::{InsertedCard, ReaderLease};
use ukey_vpiv::{CardConfig, VirtualPiv};

const OPENSC: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

fn counted(card: &InsertedCard<'_>, f: impl FnOnce()) -> u64 {
    let before = card.slot().apdu_count;
    f();
    card.slot().apdu_count - before
}

fn main() {
    let lease = ReaderLease::acquire_any(Duration::from_secs(300)).expect("vpcd reader (pcscd + vsmartcard-vpcd)");
    let card = lease.insert(VirtualPiv::new(CardConfig::default()).expect("card")).expect("insert");
    let reader = CString::new(lease.reader_name()).expect("reader");
    let options = PivOptions { management_key: Some(ManagementKey::default_key()) };
    let pin = Credential::Pin(Pin::new("123456").expect("pin"));

    // Set up: a P-256 key and its certificate in 9A, made by ukey.
    {
        let carrier = open_carrier(&PcscContext::new(), &reader, &options).expect("open");
        let request =
            KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "bench".into(), id: Some(ObjectId(vec![0x9A])) };
        let key = carrier.generate_key(&request, &pin).expect("keygen");
        let signer = CarrierKeySigner::new(&carrier, key.id.clone(), key.public_key.clone().expect("spki"), &pin)
            .expect("signer");
        let der = self_signed(&signer, &parse_name("CN=apdu economy").expect("name"), &CertificateOptions::default())
            .expect("certificate");
        carrier.import_certificate(&CertificateImport { der, label: None, id: None }, &pin).expect("import");
    }
    let digest = Sha256::digest(b"apdu economy").to_vec();
    let input = SignInput { digest, message: None };

    // ukey, as a fresh process would: open, list certificates, sign.
    let mut carrier = None;
    let ukey_first = counted(&card, || {
        let c = open_carrier(&PcscContext::new(), &reader, &options).expect("open");
        let list = c.objects().expect("objects");
        assert_eq!(list.certificates.len(), 1);
        c.sign(&ObjectId(vec![0x9A]), &Mechanism::EcdsaSha256, &input, &pin).expect("sign");
        carrier = Some(c);
    });
    let c = carrier.expect("carrier");
    let ukey_again_same = counted(&card, || {
        c.sign(&ObjectId(vec![0x9A]), &Mechanism::EcdsaSha256, &input, &pin).expect("sign again");
    });
    // Another ukey process signing again: open (identity) and sign, no listing needed.
    let ukey_again_process = counted(&card, || {
        let c = open_carrier(&PcscContext::new(), &reader, &options).expect("open");
        c.sign(&ObjectId(vec![0x9A]), &Mechanism::EcdsaSha256, &input, &pin).expect("sign");
    });

    // OpenSC: list objects, then sign (each pkcs11-tool run is a process, as ukey's CLI is).
    let dir = std::env::temp_dir().join(format!("ukey-apdu-economy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let data = dir.join("digest.bin");
    std::fs::write(&data, &input.digest).expect("write digest");
    // The leased reader's slot, by its description (the reader name): without it pkcs11-tool
    // takes the first slot with a token, which may be another test's card in the other vpcd
    // reader, and this card would count only part of OpenSC's APDUs.
    let run = |args: &[&str]| {
        let out = Command::new("pkcs11-tool")
            .args(["--module", OPENSC, "--slot-description", lease.reader_name()])
            .args(args)
            .output()
            .expect("pkcs11-tool (apt-get install opensc)");
        assert!(out.status.success(), "pkcs11-tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let sig = dir.join("sig.bin");
    let sign_args = [
        "--sign",
        "--login",
        "--pin",
        "123456",
        "--id",
        "01",
        "-m",
        "ECDSA",
        "-i",
        data.to_str().expect("path"),
        "-o",
        sig.to_str().expect("path"),
    ];
    let opensc_first = counted(&card, || {
        run(&["--list-objects", "--type", "cert"]);
        run(&sign_args);
    });
    let opensc_again = counted(&card, || run(&sign_args));
    let _ = std::fs::remove_dir_all(&dir);

    println!("APDUs sent to the virtual PIV card (counted by the card)");
    println!("{:<44} {:>6} {:>8}", "", "ukey", "OpenSC");
    println!("{:<44} {:>6} {:>8}", "list certificates, then sign once", ukey_first, opensc_first);
    println!("{:<44} {:>6} {:>8}", "sign again (new process)", ukey_again_process, opensc_again);
    println!("{:<44} {:>6} {:>8}", "sign again (same ukey handle / agent)", ukey_again_same, "-");
    let ratio = |u: u64, o: u64| if o == 0 { f64::NAN } else { u as f64 / o as f64 };
    println!(
        "ratio ukey/OpenSC: first {:.2}, again {:.2} (goal <= 0.50)",
        ratio(ukey_first, opensc_first),
        ratio(ukey_again_process, opensc_again)
    );
}
