//! The agent with Debian's real graphical PIN dialogs, `pinentry-gtk-2`, `pinentry-qt` and
//! `pinentry-gnome3` (GNOME's gcr prompter, on a private D-Bus session bus), on a real X server
//! (Xvfb). The test plays the holder with `xdotool`: it waits for the dialog window the agent's
//! pinentry opens, types into it and presses keys, exactly as a holder at a desktop would. Each
//! toolkit goes through pairing (Return alone refuses; typing the code the dialog shows allows),
//! a signature (the PIN, Return) that verifies, and a cancelled signature (Escape). This is the
//! path desktop holders take; `agent_pinentry_tty` covers the terminal one.
//!
//! The holder reads the pairing code off the screen; xdotool cannot read, so the pinentry runs
//! behind `tee`, and the test reads the code from the dialog text the agent sent it.

mod agent_support;
#[path = "agent_support/soft.rs"]
mod soft;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use agent_support::{SENTINEL_PIN, TestAgent, kind};
use serde_json::json;
use ukey_api::crypto::encoding::{base64_decode, base64_encode};
use ukey_api::crypto::prepare::SignData;
use ukey_api::crypto::verify::verify_signature;
use ukey_api::{CertificateInfo, Mechanism};

const DEV: &str = "http://localhost:8080";
const OTHER: &str = "http://localhost:9090";

/// A private X server for one test; killed on drop.
struct XServer {
    child: Child,
    display: String,
}

impl XServer {
    /// Starts Xvfb on a free display number. `-displayfd` makes Xvfb print the number once it
    /// accepts connections, so reading that line is the synchronisation.
    fn start() -> XServer {
        for tool in ["/usr/bin/Xvfb", "/usr/bin/xdotool"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: apt-get install xvfb xdotool (scripts/apt-packages.txt lists them)"
            );
        }
        let mut child = Command::new("sh")
            .args(["-c", "exec Xvfb -displayfd 3 -noreset -nolisten tcp -screen 0 1024x768x24 3>&1 1>/dev/null 2>&1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start Xvfb");
        let stdout = child.stdout.take().expect("Xvfb's display pipe");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read Xvfb's display number");
        let number = line.trim();
        assert!(!number.is_empty() && number.chars().all(|c| c.is_ascii_digit()), "Xvfb did not start: {line:?}");
        XServer { child, display: format!(":{number}") }
    }

    /// Runs `xdotool args...` on this display (bounded by `timeout`, since `search --sync` waits
    /// without end) and returns its output.
    fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new("timeout")
            .arg("30")
            .arg("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .expect("run xdotool");
        assert!(
            out.status.success(),
            "xdotool {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits for a visible window titled exactly `title`; returns its id.
    fn wait_for(&self, title: &str) -> String {
        let pattern = format!("^{}$", title.replace('?', "\\?"));
        let found = self.xdotool(&["search", "--sync", "--onlyvisible", "--name", &pattern]);
        found.lines().last().expect("a window id").trim().to_string()
    }

    /// Waits for a visible window titled exactly `title`, focuses it, types `text` (if any), then
    /// presses `keys` in order. Keystrokes go through the XTEST extension to the focused window,
    /// as a real keyboard's would (toolkits may ignore synthetic `XSendEvent` input).
    fn answer(&self, title: &str, text: Option<&str>, keys: &[&str]) {
        let window = self.wait_for(title);
        self.xdotool(&["windowfocus", "--sync", &window]);
        if let Some(text) = text {
            self.xdotool(&["type", "--delay", "20", text]);
        }
        let mut args = vec!["key", "--delay", "50"];
        args.extend_from_slice(keys);
        self.xdotool(&args);
        self.wait_closed(&window);
    }

    /// Waits (bounded) until `window` is no longer shown, so the next dialog's search cannot
    /// find this one while it closes (gcr's prompter takes a moment).
    fn wait_closed(&self, window: &str) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = Command::new("xdotool")
                .args(["search", "--onlyvisible", "--name", "."])
                .env("DISPLAY", &self.display)
                .output()
                .expect("run xdotool");
            if !String::from_utf8_lossy(&out.stdout).lines().any(|w| w.trim() == window) {
                return;
            }
            assert!(std::time::Instant::now() < until, "window {window} never closed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private D-Bus session bus whose activated services (gcr's prompter) open their windows on
/// `display`; killed on drop.
struct SessionBus {
    child: Child,
    address: String,
}

impl SessionBus {
    /// Starts `dbus-daemon --session`; it prints its address once it accepts connections, so
    /// reading that line is the synchronisation.
    fn start(display: &str) -> SessionBus {
        assert!(
            Path::new("/usr/bin/dbus-daemon").exists(),
            "dbus-daemon is missing: apt-get install dbus-daemon (scripts/apt-packages.txt lists it)"
        );
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .env("DISPLAY", display)
            // No accessibility bus: it would outlive the test as a second daemon.
            .env("NO_AT_BRIDGE", "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start dbus-daemon");
        let stdout = child.stdout.take().expect("dbus-daemon's address pipe");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the bus address");
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon did not start: {line:?}");
        SessionBus { child, address }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` behind `tee`, so the test can read what its dialogs show (the holder's eyes).
fn pinentry_seen_through_tee(dir: &Path, program: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let seen = dir.join("pinentry-input.txt");
    let wrapper = dir.join("pinentry-tee");
    std::fs::write(&wrapper, format!("#!/bin/sh\ntee -a '{}' | exec {program} \"$@\"\n", seen.display()))
        .expect("write the pinentry wrapper");
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod wrapper");
    (wrapper, seen)
}

/// The code the `n`-th pairing dialog showed ("type this code: 1234"; n counts from 1), waiting
/// (bounded) until the agent has sent that dialog to the pinentry.
fn nth_code(seen: &Path, n: usize) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(seen).unwrap_or_default();
        if let Some(after) = text.split("type this code: ").nth(n) {
            let code: String = after.chars().take_while(char::is_ascii_digit).collect();
            assert_eq!(code.len(), 4, "a four-digit code: {text}");
            return code;
        }
        assert!(std::time::Instant::now() < until, "pairing dialog {n} never showed a code: {text}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Pairs, signs and cancels through the graphical `program`, played with xdotool.
fn pair_sign_cancel(program: &str) {
    assert!(
        Path::new(program).exists(),
        "{program} is missing: apt-get install pinentry-gtk2 pinentry-qt pinentry-gnome3"
    );
    let x = XServer::start();
    let bus = program.ends_with("gnome3").then(|| SessionBus::start(&x.display));
    let dir = tempfile::tempdir().expect("temp dir");
    let fx = soft::soft_token(&dir.path().join("soft"), "Alice", ukey_api::KeyAlgorithm::P256, 3);
    let (wrapper, seen) = pinentry_seen_through_tee(dir.path(), program);
    let wrapper = wrapper.to_string_lossy().into_owned();
    let args = ["--pinentry", &wrapper, "--dev-origin", DEV, "--dev-origin", OTHER];
    let mut env = vec![("DISPLAY", Path::new(&x.display))];
    if let Some(bus) = &bus {
        env.push(("DBUS_SESSION_BUS_ADDRESS", Path::new(&bus.address)));
    }
    let agent = TestAgent::start_in_env(dir, &args, &env);
    soft::wait_tokens(&agent, 1);

    // A holder who just presses Return does not let a site in, whichever button the toolkit
    // makes the default (gcr's is the OK button): allowing takes typing the shown code.
    let mut other = agent.ws_hello(OTHER);
    std::thread::scope(|s| {
        let holder = s.spawn(|| x.answer("ukey: allow a web site?", None, &["Return"]));
        let r = other.call("pair", json!({}));
        holder.join().expect("holder");
        assert_eq!(kind(&r), "Cancelled", "{program}: Return refuses: {r}");
    });
    assert_eq!(kind(&other.call("certs.list", json!({}))), "NotPaired");

    // Allowing: the holder reads the code in the dialog and types it.
    let mut ws = agent.ws_hello(DEV);
    std::thread::scope(|s| {
        let holder = s.spawn(|| {
            // The second pairing dialog of this test (the first was refused above).
            let code = nth_code(&seen, 2);
            x.answer("ukey: allow a web site?", Some(&code), &["Return"])
        });
        let r = ws.call("pair", json!({}));
        holder.join().expect("holder");
        assert_eq!(r["result"]["paired"], true, "{program}: {r}");
    });

    // Signing: the holder types the PIN into the dialog's entry and presses Return.
    let data = b"signed through a graphical pinentry";
    std::thread::scope(|s| {
        let holder = s.spawn(|| x.answer("ukey: PIN", Some(SENTINEL_PIN), &["Return"]));
        let r = ws.call("sign", json!({ "cert": fx.handle, "data": base64_encode(data) }));
        holder.join().expect("holder");
        let sig = base64_decode(r["result"]["signature"].as_str().unwrap_or_else(|| panic!("{program}: {r}")))
            .expect("base64 signature");
        let cert = CertificateInfo::parse(&fx.cert_der).expect("certificate");
        verify_signature(&cert.public_key, &Mechanism::EcdsaSha256, SignData::Message(data), &sig)
            .expect("the signature verifies with the certificate's key");
    });

    // Escape closes the dialog: the request ends as cancelled, nothing is signed.
    std::thread::scope(|s| {
        let holder = s.spawn(|| x.answer("ukey: PIN", None, &["Escape"]));
        let r = ws.call("sign", json!({ "cert": fx.handle, "data": base64_encode(b"not signed") }));
        holder.join().expect("holder");
        assert_eq!(kind(&r), "Cancelled", "{program}: {r}");
    });

    assert!(!agent.log().contains(SENTINEL_PIN), "the PIN never reaches the agent's log");
}

#[test]
fn gtk2_pinentry_pairs_signs_and_cancels() {
    pair_sign_cancel("/usr/bin/pinentry-gtk-2");
}

#[test]
fn qt_pinentry_pairs_signs_and_cancels() {
    pair_sign_cancel("/usr/bin/pinentry-qt");
}

#[test]
fn gnome3_pinentry_pairs_signs_and_cancels() {
    pair_sign_cancel("/usr/bin/pinentry-gnome3");
}
