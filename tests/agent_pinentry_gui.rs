//! The agent with Debian's real graphical PIN dialogs, `pinentry-gtk-2` and `pinentry-qt`, on a
//! real X server (Xvfb). The test plays the holder with `xdotool`: it waits for the dialog window
//! the agent's pinentry opens, types into it and presses keys, exactly as a holder at a desktop
//! would. Each toolkit goes through pairing (CONFIRM: Return alone refuses, Tab then Return
//! allows), a signature (GETPIN: the PIN, Return) that verifies, and a cancelled signature
//! (Escape). This is the path desktop
//! holders take; `agent_pinentry_tty` covers the terminal one.

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

    /// Waits for a visible window titled exactly `title`, focuses it, types `text` (if any), then
    /// presses `keys` in order. Keystrokes go through the XTEST extension to the focused window,
    /// as a real keyboard's would (toolkits may ignore synthetic `XSendEvent` input).
    fn answer(&self, title: &str, text: Option<&str>, keys: &[&str]) {
        let pattern = format!("^{}$", title.replace('?', "\\?"));
        let found = self.xdotool(&["search", "--sync", "--onlyvisible", "--name", &pattern]);
        let window = found.lines().last().expect("a window id").trim().to_string();
        self.xdotool(&["windowfocus", "--sync", &window]);
        if let Some(text) = text {
            self.xdotool(&["type", "--delay", "20", text]);
        }
        let mut args = vec!["key", "--delay", "50"];
        args.extend_from_slice(keys);
        self.xdotool(&args);
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pairs, signs and cancels through the graphical `program`, played with xdotool.
fn pair_sign_cancel(program: &str) {
    assert!(Path::new(program).exists(), "{program} is missing: apt-get install pinentry-gtk2 pinentry-qt");
    let x = XServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let fx = soft::soft_token(&dir.path().join("soft"), "Alice", ukey_api::KeyAlgorithm::P256, 3);
    let args = ["--pinentry", program, "--dev-origin", DEV, "--dev-origin", OTHER];
    let agent = TestAgent::start_in_env(dir, &args, &[("DISPLAY", Path::new(&x.display))]);
    soft::wait_tokens(&agent, 1);

    // The pairing dialog's default button is Refuse: a holder who just presses Return (or
    // Escape) does not let a site in.
    let mut other = agent.ws_hello(OTHER);
    std::thread::scope(|s| {
        let holder = s.spawn(|| x.answer("ukey: allow a web site?", None, &["Return"]));
        let r = other.call("pair", json!({}));
        holder.join().expect("holder");
        assert_eq!(kind(&r), "Cancelled", "{program}: Return refuses: {r}");
    });
    assert_eq!(kind(&other.call("certs.list", json!({}))), "NotPaired");

    // Allowing takes a deliberate move to the Allow button.
    let mut ws = agent.ws_hello(DEV);
    std::thread::scope(|s| {
        let holder = s.spawn(|| x.answer("ukey: allow a web site?", None, &["Tab", "Return"]));
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
