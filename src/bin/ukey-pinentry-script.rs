//! A pinentry that answers from a script file instead of a person: for ukey's tests and for
//! unattended demos. It speaks the real Assuan protocol the standard pinentry programs speak, so
//! the agent talks to it exactly as it talks to pinentry-gnome3 or pinentry-curses.
//!
//! Usage: `ukey-pinentry-script --script FILE [--log FILE]`
//!
//! Every GETPIN or CONFIRM takes the first line of the script file (removing it, under an
//! `flock`, so consecutive dialogs of one agent consume consecutive lines):
//! - `pin VALUE`: GETPIN answers VALUE; CONFIRM answers OK.
//! - `ok`: CONFIRM answers OK; GETPIN types the code its description shows after "type this
//!   code: " (the agent's pairing dialog), as a holder who read it would, or cancels if none.
//! - `no`: CONFIRM answers "not confirmed"; GETPIN cancels.
//! - `cancel`: the holder closed the dialog.
//! - `wait PATH`: create `PATH.waiting` (so a test knows the dialog is open), wait (at most 60 s)
//!   until PATH exists, then take the next line.
//! - `exit`: the program exits without answering (a crashed dialog).
//!
//! An empty script cancels. With `--log`, every dialog is appended to the log as one JSON line
//! with its command, title, description, prompt, error text and which kind of answer it got —
//! never the PIN itself.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const CANCELLED: &str = "ERR 83886179 Operation cancelled <Pinentry>";
const NOT_CONFIRMED: &str = "ERR 83886194 Not confirmed <Pinentry>";

fn main() {
    let mut script = None;
    let mut log = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--script" => script = args.next().map(PathBuf::from),
            "--log" => log = args.next().map(PathBuf::from),
            // Options the real pinentry programs take (e.g. --display) are accepted and ignored.
            _ => {}
        }
    }
    let Some(script) = script else {
        eprintln!("usage: ukey-pinentry-script --script FILE [--log FILE]");
        std::process::exit(2);
    };
    if let Err(e) = serve(&script, log.as_ref()) {
        eprintln!("ukey-pinentry-script: {e}");
        std::process::exit(1);
    }
}

fn serve(script: &PathBuf, log: Option<&PathBuf>) -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut input = BufReader::new(stdin.lock());
    let mut out = std::io::stdout().lock();
    let mut texts: BTreeMap<&'static str, String> = BTreeMap::new();
    writeln!(out, "OK Pleased to meet you")?;
    out.flush()?;
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end_matches(['\n', '\r']);
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let field = match verb {
            "SETTITLE" => Some("title"),
            "SETDESC" => Some("description"),
            "SETPROMPT" => Some("prompt"),
            "SETERROR" => Some("error"),
            "SETOK" => Some("ok"),
            "SETCANCEL" => Some("cancel"),
            _ => None,
        };
        if let Some(field) = field {
            texts.insert(field, unescape(arg));
            writeln!(out, "OK")?;
        } else {
            match verb {
                "OPTION" | "SETTIMEOUT" | "SETKEYINFO" | "SETQUALITYBAR" | "SETREPEAT" | "RESET" | "NOP" => {
                    writeln!(out, "OK")?
                }
                "GETINFO" => {
                    if arg == "pid" {
                        writeln!(out, "D {}", std::process::id())?;
                    }
                    writeln!(out, "OK")?
                }
                "GETPIN" | "CONFIRM" => {
                    let answer = next_answer(script)?;
                    // Record before answering: the agent may kill the dialog as soon as it has
                    // its answer.
                    let kind = match (verb, answer.as_str()) {
                        (_, "exit") => "exit",
                        ("GETPIN", a) if a.starts_with("pin ") => "pin",
                        ("GETPIN", "ok") if shown_code(&texts).is_some() => "code",
                        ("CONFIRM", a) if a == "ok" || a.starts_with("pin ") => "ok",
                        ("CONFIRM", "no") => "no",
                        _ => "cancel",
                    };
                    record(log, verb, &texts, kind)?;
                    match kind {
                        "exit" => std::process::exit(0),
                        "pin" => {
                            writeln!(out, "D {}", escape(answer.get(4..).unwrap_or("")))?;
                            writeln!(out, "OK")?;
                        }
                        "code" => {
                            writeln!(out, "D {}", shown_code(&texts).unwrap_or_default())?;
                            writeln!(out, "OK")?;
                        }
                        "ok" => writeln!(out, "OK")?,
                        "no" => writeln!(out, "{NOT_CONFIRMED}")?,
                        _ => writeln!(out, "{CANCELLED}")?,
                    }
                    texts.remove("error");
                }
                "BYE" => {
                    writeln!(out, "OK closing connection")?;
                    out.flush()?;
                    return Ok(());
                }
                _ => writeln!(out, "ERR 536871187 Unknown IPC command <User defined source 1>")?,
            }
        }
        out.flush()?;
    }
}

/// The digits after "type this code: " in the dialog's description, if it shows one.
fn shown_code(texts: &BTreeMap<&'static str, String>) -> Option<String> {
    let (_, after) = texts.get("description")?.split_once("type this code: ")?;
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    (!code.is_empty()).then_some(code)
}

/// Takes the first usable line of the script, handling `wait` lines on the way.
fn next_answer(script: &PathBuf) -> std::io::Result<String> {
    loop {
        let line = pop_line(script)?;
        match line.strip_prefix("wait ") {
            Some(path) => {
                std::fs::write(format!("{}.waiting", path.trim()), b"")?;
                let deadline = Instant::now() + Duration::from_secs(60);
                while !std::path::Path::new(path.trim()).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            None => return Ok(line),
        }
    }
}

/// Removes and returns the first line of the file, under an exclusive lock.
fn pop_line(script: &PathBuf) -> std::io::Result<String> {
    let mut f = OpenOptions::new().read(true).write(true).open(script)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let first = first.trim_end_matches('\r').to_string();
    f.set_len(0)?;
    f.seek(SeekFrom::Start(0))?;
    f.write_all(rest.as_bytes())?;
    f.sync_all()?;
    Ok(first)
}

fn record(
    log: Option<&PathBuf>,
    command: &str,
    texts: &BTreeMap<&'static str, String>,
    answer: &str,
) -> std::io::Result<()> {
    let Some(path) = log else { return Ok(()) };
    let mut entry = serde_json::Map::new();
    entry.insert("command".into(), command.into());
    for (k, v) in texts {
        entry.insert((*k).into(), v.clone().into());
    }
    entry.insert("answer".into(), answer.into());
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
    writeln!(f, "{}", serde_json::Value::Object(entry))
}

fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c == '%' || (c as u32) < 0x20 {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}
