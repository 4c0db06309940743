//! The agent with Debian's real `pinentry-tty` as its PIN dialog, on a pseudo-terminal this test
//! holds: the test reads what the holder would see on the terminal and types the answers. This is
//! the same Assuan conversation the agent has with pinentry-curses or pinentry-gnome3, with no
//! test program in between: pairing asks the holder to type a code the dialog shows, a signature a GETPIN showing
//! the origin, the certificate and a digest, a wrong PIN is asked again with the tries left, and
//! closing the dialog (end of input) is a typed cancellation.

mod agent_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_support::{DEADLINE, SENTINEL_PIN, kind};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use serde_json::json;
use ukey_api::crypto::encoding::{base64_decode, base64_encode};
use ukey_api::crypto::prepare::SignData;
use ukey_api::crypto::verify::verify_signature;
use ukey_api::{CertificateInfo, Mechanism};

const PINENTRY_TTY: &str = "/usr/bin/pinentry-tty";
const DEV: &str = "http://localhost:8080";
const OTHER: &str = "http://localhost:9090";

/// A pseudo-terminal: the test holds the master side (what the holder sees and types), the
/// pinentry opens the slave by name.
struct Terminal {
    master: File,
    /// Held open so the master never reads EIO between two pinentry runs.
    _slave: File,
    name: PathBuf,
    screen: Arc<Mutex<String>>,
    /// How much of `screen` earlier waits have consumed.
    seen: usize,
}

impl Terminal {
    fn open() -> Terminal {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("open a pseudo-terminal");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = PathBuf::from(ptsname(&master, Vec::new()).expect("ptsname").into_string().expect("utf-8 name"));
        let slave = std::fs::OpenOptions::new().read(true).write(true).open(&name).expect("open the slave side");
        let master = File::from(master);
        let screen = Arc::new(Mutex::new(String::new()));
        let mut reader = master.try_clone().expect("clone the master");
        let sink = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Terminal { master, _slave: slave, name, screen, seen: 0 }
    }

    /// Everything shown so far, without terminal control sequences (pinentry-tty underlines the
    /// accelerator letter of each button).
    fn screen(&self) -> String {
        strip_escapes(&self.screen.lock().map(|s| s.clone()).unwrap_or_default())
    }

    /// Waits until the terminal shows `needle` after what earlier waits consumed; returns that
    /// new text (up to and including the needle).
    fn wait_for(&mut self, needle: &str) -> String {
        let until = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if let Some(pos) = screen.get(self.seen..).and_then(|rest| rest.find(needle)) {
                let end = self.seen + pos + needle.len();
                let shown = screen[self.seen..end].to_string();
                self.seen = end;
                return shown;
            }
            assert!(Instant::now() < until, "the terminal never showed {needle:?}; it shows:\n{screen}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types on the terminal.
    fn type_text(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).expect("type on the terminal");
        self.master.flush().expect("flush the terminal");
    }
}

/// The code a pairing dialog shows ("type this code: 1234"), as the holder reads it.
fn shown_code(shown: &str) -> String {
    let (_, after) = shown.split_once("type this code: ").unwrap_or_else(|| panic!("no code shown: {shown}"));
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 4, "a four-digit code: {shown}");
    code
}

/// Removes CSI sequences (`ESC [ ... final byte`).
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn pinentry_tty_args(tty: &Path) -> Vec<String> {
    assert!(
        Path::new(PINENTRY_TTY).exists(),
        "{PINENTRY_TTY} is missing: apt-get install pinentry-tty (scripts/apt-packages.txt lists it)"
    );
    vec![
        "--pinentry".into(),
        PINENTRY_TTY.into(),
        "--pinentry-arg=--ttyname".into(),
        format!("--pinentry-arg={}", tty.display()),
        "--dev-origin".into(),
        DEV.into(),
        "--dev-origin".into(),
        OTHER.into(),
    ]
}

#[test]
fn pairing_and_signing_through_debians_pinentry_tty() {
    let mut tty = Terminal::open();
    let args = pinentry_tty_args(&tty.name);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (agent, fx) = soft::with_soft(&args);

    // Pairing: a dialog naming the origin; the holder reads the code it shows and types it.
    let mut ws = agent.ws_hello(DEV);
    let holder = std::thread::spawn(move || {
        let shown = tty.wait_for("Code: ");
        let code = shown_code(&shown);
        tty.type_text(&format!("{code}\n"));
        (tty, shown)
    });
    let r = ws.call("pair", json!({}));
    let (mut tty, shown) = holder.join().expect("holder thread");
    assert_eq!(r["result"]["paired"], true, "{r}");
    assert!(shown.contains(DEV), "the pairing dialog names the origin: {shown}");

    // Signing: a GETPIN naming origin and certificate; a wrong PIN first, then the right one.
    let data = b"signed through pinentry-tty";
    let holder = std::thread::spawn(move || {
        let first = tty.wait_for("PIN: ");
        tty.type_text("000000\n");
        let second = tty.wait_for("PIN: ");
        tty.type_text(&format!("{SENTINEL_PIN}\n"));
        (tty, first, second)
    });
    let r = ws.call("sign", json!({ "cert": fx.handle, "data": base64_encode(data) }));
    let (mut tty, first, second) = holder.join().expect("holder thread");
    assert!(first.contains(DEV), "the PIN dialog names the origin: {first}");
    assert!(first.contains(&fx.subject), "the PIN dialog names the certificate: {first}");
    let sm3 = hex::encode(ukey_api::HashAlg::Sm3.digest(data)).to_uppercase();
    let short = format!("{} {}", &sm3[..4], &sm3[4..8]);
    assert!(first.contains(&short), "the PIN dialog shows a short SM3 of what is signed ({short}): {first}");
    assert!(
        second.contains("Wrong PIN") && second.contains("2 tries left"),
        "the second dialog says the PIN was wrong and how many tries are left: {second}"
    );
    let sig = base64_decode(r["result"]["signature"].as_str().unwrap_or_else(|| panic!("no signature: {r}")))
        .expect("base64 signature");
    let cert = CertificateInfo::parse(&fx.cert_der).expect("certificate");
    verify_signature(&cert.public_key, &Mechanism::EcdsaSha256, SignData::Message(data), &sig)
        .expect("the signature verifies with the certificate's key");
    assert!(!tty.screen().contains(SENTINEL_PIN), "pinentry-tty does not echo the PIN");

    // Closing the PIN dialog (end of input) cancels the request with a typed error.
    let holder = std::thread::spawn(move || {
        tty.wait_for("PIN: ");
        tty.type_text("\u{4}");
        tty
    });
    let r = ws.call("sign", json!({ "cert": fx.handle, "data": base64_encode(b"not signed") }));
    let mut tty = holder.join().expect("holder thread");
    assert_eq!(kind(&r), "Cancelled", "{r}");

    // A second origin stays unpaired when the holder just presses Return (an empty code).
    let mut other = agent.ws_hello(OTHER);
    let holder = std::thread::spawn(move || {
        tty.wait_for("Code: ");
        tty.type_text("\n");
    });
    let r = other.call("pair", json!({}));
    holder.join().expect("holder thread");
    assert_eq!(kind(&r), "Cancelled", "{r}");
    assert_eq!(kind(&other.call("certs.list", json!({}))), "NotPaired");

    assert!(!agent.log().contains(SENTINEL_PIN), "the PIN never reaches the agent's log");
}
