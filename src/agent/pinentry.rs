//! An Assuan client for the standard `pinentry` programs (pinentry-curses, -gnome3, -qt, -tty).
//!
//! One dialog per process, as gpg-agent does it: start the program, set title, description,
//! prompt and error text, then `GETPIN` or `CONFIRM`, then `BYE`. The PIN arrives in `D` lines,
//! percent-escaped; it is read into a zeroizing buffer that never reallocates, decoded into another
//! zeroizing buffer and moved into a [`Pin`] without a copy left behind. Dropping the dialog future
//! (the request timed out, the carrier was removed) kills the program.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use zeroize::{Zeroize, Zeroizing};

use ukey_api::{Error, Pin};

/// Longest Assuan line (the protocol's limit is 1000 bytes including the newline).
pub const LINE_MAX: usize = 1000;

/// libgpg-error codes pinentry answers with (low 16 bits of the ERR code).
const GPG_ERR_TIMEOUT: u32 = 62;
const GPG_ERR_CANCELED: u32 = 99;
const GPG_ERR_NOT_CONFIRMED: u32 = 114;

/// The texts of one dialog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dialog {
    /// Window title.
    pub title: String,
    /// The main text: who asks, for what, with which certificate.
    pub description: String,
    /// The label before the entry field (GETPIN only).
    pub prompt: String,
    /// An error line shown above, e.g. after a wrong PIN with the tries left.
    pub error: Option<String>,
    /// Label of the OK button.
    pub ok: Option<String>,
    /// Label of the cancel button.
    pub cancel: Option<String>,
}

/// How to run pinentry.
#[derive(Debug, Clone)]
pub struct Pinentry {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
}

impl Pinentry {
    /// A pinentry run as `program args...`; dialogs close (as cancelled) after `timeout`.
    pub fn new(program: PathBuf, args: Vec<String>, timeout: Duration) -> Self {
        Pinentry { program, args, timeout }
    }

    /// Asks for a PIN. `Err(Cancelled)` when the holder cancels or the dialog times out.
    pub async fn get_pin(&self, dialog: &Dialog) -> Result<Pin, Error> {
        let mut conv = self.start(dialog).await?;
        conv.command("GETPIN").await?;
        let mut data: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(LINE_MAX));
        loop {
            let line = conv.reader.read_line().await?;
            match Reply::parse(&line) {
                Reply::Data(escaped) => percent_decode_into(escaped, &mut data)?,
                Reply::Ok => break,
                Reply::Err(code) => {
                    conv.bye().await;
                    return Err(map_err_code(code, "entering the PIN"));
                }
                Reply::Inquire => conv.send_line("CAN").await?,
                Reply::Status | Reply::Comment => {}
                Reply::Other => return Err(protocol_error("unexpected answer to GETPIN")),
            }
        }
        conv.bye().await;
        let bytes = std::mem::take(&mut *data);
        let text = String::from_utf8(bytes).map_err(|e| {
            let mut bytes = e.into_bytes();
            bytes.zeroize();
            Error::PinRejected("the PIN is not valid UTF-8 text".into())
        })?;
        Pin::new(text)
    }

    /// Asks for a yes/no confirmation; `Ok(false)` when refused or cancelled.
    pub async fn confirm(&self, dialog: &Dialog) -> Result<bool, Error> {
        let mut conv = self.start(dialog).await?;
        conv.command("CONFIRM").await?;
        loop {
            let line = conv.reader.read_line().await?;
            match Reply::parse(&line) {
                Reply::Ok => {
                    conv.bye().await;
                    return Ok(true);
                }
                Reply::Err(code) if matches!(code & 0xffff, GPG_ERR_CANCELED | GPG_ERR_NOT_CONFIRMED) => {
                    conv.bye().await;
                    return Ok(false);
                }
                Reply::Err(code) => return Err(map_err_code(code, "asking for confirmation")),
                Reply::Inquire => conv.send_line("CAN").await?,
                Reply::Status | Reply::Comment | Reply::Data(_) => {}
                Reply::Other => return Err(protocol_error("unexpected answer to CONFIRM")),
            }
        }
    }

    async fn start(&self, dialog: &Dialog) -> Result<Conversation, Error> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            Error::NotFound(format!(
                "cannot run the PIN dialog program `{}` ({e}); install pinentry (e.g. `apt install pinentry-gnome3` \
                 or `pinentry-curses`) or set [agent.pinentry] program",
                self.program.display()
            ))
        })?;
        let stdin = child.stdin.take().ok_or_else(|| protocol_error("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| protocol_error("no stdout"))?;
        let mut conv = Conversation { _child: child, stdin, reader: LineReader::new(stdout) };
        conv.expect_ok("greeting").await?;
        for (name, value) in environment_options() {
            // Options a pinentry does not know are answered with ERR; that is fine.
            conv.send_line(&format!("OPTION {name}={}", escape(&value))).await?;
            conv.read_ok_or_err().await?;
        }
        let secs = self.timeout.as_secs().max(1);
        conv.simple(&format!("SETTIMEOUT {secs}")).await?;
        conv.simple(&format!("SETTITLE {}", escape_fit("SETTITLE ", &dialog.title))).await?;
        conv.simple(&format!("SETDESC {}", escape_fit("SETDESC ", &dialog.description))).await?;
        if !dialog.prompt.is_empty() {
            conv.simple(&format!("SETPROMPT {}", escape_fit("SETPROMPT ", &dialog.prompt))).await?;
        }
        if let Some(err) = &dialog.error {
            conv.simple(&format!("SETERROR {}", escape_fit("SETERROR ", err))).await?;
        }
        if let Some(ok) = &dialog.ok {
            conv.simple(&format!("SETOK {}", escape_fit("SETOK ", ok))).await?;
        }
        if let Some(cancel) = &dialog.cancel {
            conv.simple(&format!("SETCANCEL {}", escape_fit("SETCANCEL ", cancel))).await?;
        }
        Ok(conv)
    }
}

/// Options that let a terminal pinentry find the agent's terminal and a graphical one its display.
fn environment_options() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let tty = std::env::var("GPG_TTY").ok().filter(|t| !t.is_empty()).or_else(|| {
        std::fs::read_link("/proc/self/fd/0")
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| p.starts_with("/dev/pts/") || p.starts_with("/dev/tty"))
    });
    if let Some(t) = tty {
        out.push(("ttyname", t));
        if let Ok(term) = std::env::var("TERM") {
            out.push(("ttytype", term));
        }
    }
    if let Ok(display) = std::env::var("DISPLAY") {
        out.push(("display", display));
    }
    if let Ok(lang) = std::env::var("LC_CTYPE").or_else(|_| std::env::var("LANG")) {
        out.push(("lc-ctype", lang));
    }
    out
}

struct Conversation {
    _child: Child,
    stdin: ChildStdin,
    reader: LineReader<ChildStdout>,
}

impl Conversation {
    async fn send_line(&mut self, line: &str) -> Result<(), Error> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.stdin.write_all(&buf).await.map_err(|e| Error::io("talking to pinentry", e))?;
        self.stdin.flush().await.map_err(|e| Error::io("talking to pinentry", e))
    }

    async fn command(&mut self, line: &str) -> Result<(), Error> {
        self.send_line(line).await
    }

    /// Sends a command that must be answered OK.
    async fn simple(&mut self, line: &str) -> Result<(), Error> {
        self.send_line(line).await?;
        let verb = line.split(' ').next().unwrap_or(line).to_string();
        self.expect_ok(&verb).await
    }

    async fn expect_ok(&mut self, what: &str) -> Result<(), Error> {
        match self.read_ok_or_err().await? {
            None => Ok(()),
            Some(code) => Err(map_err_code(code, &format!("pinentry refused {what}"))),
        }
    }

    /// Reads to the final OK (`None`) or ERR (`Some(code)`), skipping status and comments.
    async fn read_ok_or_err(&mut self) -> Result<Option<u32>, Error> {
        loop {
            let line = self.reader.read_line().await?;
            match Reply::parse(&line) {
                Reply::Ok => return Ok(None),
                Reply::Err(code) => return Ok(Some(code)),
                Reply::Status | Reply::Comment | Reply::Data(_) => {}
                Reply::Inquire => self.send_line("CAN").await?,
                Reply::Other => return Err(protocol_error("unexpected line")),
            }
        }
    }

    async fn bye(&mut self) {
        let _ = self.send_line("BYE").await;
    }
}

/// Reads Assuan lines into a fixed-capacity zeroizing buffer: no reallocation ever leaves a copy
/// of a PIN in freed memory.
struct LineReader<R> {
    inner: R,
    pending: Zeroizing<Vec<u8>>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(inner: R) -> Self {
        LineReader { inner, pending: Zeroizing::new(Vec::with_capacity(2 * LINE_MAX)) }
    }

    /// The next line without its newline, in a buffer wiped on drop.
    async fn read_line(&mut self) -> Result<Zeroizing<Vec<u8>>, Error> {
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let mut line = Zeroizing::new(Vec::with_capacity(LINE_MAX));
                line.extend_from_slice(&self.pending[..pos]);
                // Shift the rest down within the same allocation, then wipe the tail.
                let total = self.pending.len();
                self.pending.copy_within(pos + 1..total, 0);
                let rest = total - pos - 1;
                self.pending[rest..].zeroize();
                self.pending.truncate(rest);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.pending.len() >= LINE_MAX {
                return Err(protocol_error("a line longer than the Assuan limit"));
            }
            let mut chunk = Zeroizing::new([0u8; 256]);
            let room = (LINE_MAX - self.pending.len()).min(chunk.len());
            let n = self.inner.read(&mut chunk[..room]).await.map_err(|e| Error::io("reading from pinentry", e))?;
            if n == 0 {
                return Err(Error::Device(
                    "the PIN dialog program exited without answering (is a display or terminal available to it?)"
                        .into(),
                ));
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}

/// One Assuan answer line. `Data` borrows the escaped payload.
enum Reply<'a> {
    Ok,
    Err(u32),
    Data(&'a [u8]),
    Status,
    Comment,
    Inquire,
    Other,
}

impl<'a> Reply<'a> {
    fn parse(line: &'a [u8]) -> Self {
        if line == b"OK" || line.starts_with(b"OK ") {
            Reply::Ok
        } else if let Some(rest) = line.strip_prefix(b"ERR ") {
            let text = String::from_utf8_lossy(rest);
            let code = text.split(' ').next().unwrap_or("");
            Reply::Err(code.parse().unwrap_or(0))
        } else if let Some(rest) = line.strip_prefix(b"D ") {
            Reply::Data(rest)
        } else if line.starts_with(b"S ") || line == b"S" {
            Reply::Status
        } else if line.starts_with(b"#") {
            Reply::Comment
        } else if line.starts_with(b"INQUIRE") {
            Reply::Inquire
        } else {
            Reply::Other
        }
    }
}

fn map_err_code(code: u32, what: &str) -> Error {
    match code & 0xffff {
        GPG_ERR_CANCELED | GPG_ERR_NOT_CONFIRMED => Error::Cancelled,
        GPG_ERR_TIMEOUT => Error::Timeout("the PIN dialog was not answered in time".into()),
        other => Error::Device(format!("pinentry failed {what} (error code {other})")),
    }
}

fn protocol_error(what: &str) -> Error {
    Error::Device(format!("the PIN dialog program broke the Assuan protocol: {what}"))
}

/// Decodes `%XX` escapes of a `D` line, appending to `out` (which must not reallocate).
fn percent_decode_into(escaped: &[u8], out: &mut Zeroizing<Vec<u8>>) -> Result<(), Error> {
    let mut i = 0;
    while i < escaped.len() {
        if out.len() == out.capacity() {
            return Err(Error::PinRejected("the PIN is too long".into()));
        }
        let b = escaped[i];
        if b == b'%' {
            let hex = escaped.get(i + 1..i + 3).ok_or_else(|| protocol_error("bad escape in data"))?;
            let hi = (hex[0] as char).to_digit(16).ok_or_else(|| protocol_error("bad escape in data"))?;
            let lo = (hex[1] as char).to_digit(16).ok_or_else(|| protocol_error("bad escape in data"))?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(())
}

/// Percent-escapes text for an Assuan command argument: `%`, CR, LF and other control characters.
/// Newlines become `%0A`, which pinentry shows as line breaks.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c == '+' || (c as u32) < 0x20 || c == '\u{7f}' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Escapes `text` and cuts it (at a character boundary, with an ellipsis) so the whole command line
/// stays under the Assuan limit.
fn escape_fit(verb: &str, text: &str) -> String {
    let budget = LINE_MAX - 1 - verb.len();
    let full = escape(text);
    if full.len() <= budget {
        return full;
    }
    let mut out = String::new();
    for c in text.chars() {
        let piece = escape(&c.to_string());
        if out.len() + piece.len() + "…".len() > budget {
            break;
        }
        out.push_str(&piece);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_assuan() {
        assert_eq!(escape("a%b\nc\r"), "a%25b%0Ac%0D");
        assert_eq!(escape("1+1"), "1%2B1");
        assert_eq!(escape("签名"), "签名");
    }

    #[test]
    fn long_texts_are_cut_to_fit_a_line() {
        let text = "签".repeat(2000);
        let cut = escape_fit("SETDESC ", &text);
        assert!(cut.len() + "SETDESC ".len() < LINE_MAX);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn data_lines_decode_into_the_buffer() {
        let mut out = Zeroizing::new(Vec::with_capacity(16));
        percent_decode_into(b"12%2534%0A", &mut out).unwrap();
        assert_eq!(&out[..], b"12%34\n");
        let mut small = Zeroizing::new(Vec::with_capacity(2));
        assert!(percent_decode_into(b"123", &mut small).is_err());
        assert!(percent_decode_into(b"%G1", &mut Zeroizing::new(Vec::with_capacity(8))).is_err());
    }

    #[test]
    fn error_codes_map_to_actionable_errors() {
        assert!(matches!(map_err_code(83886179, "x"), Error::Cancelled));
        assert!(matches!(map_err_code(83886142, "x"), Error::Timeout(_)));
        assert!(matches!(map_err_code(83886194, "x"), Error::Cancelled));
    }

    #[tokio::test]
    async fn line_reader_splits_and_bounds_lines() {
        let data: &[u8] = b"OK hello\r\nD 1234\nOK\n";
        let mut r = LineReader::new(data);
        assert_eq!(&r.read_line().await.unwrap()[..], b"OK hello");
        assert_eq!(&r.read_line().await.unwrap()[..], b"D 1234");
        assert_eq!(&r.read_line().await.unwrap()[..], b"OK");
        assert!(r.read_line().await.is_err());
        let long = vec![b'x'; 3000];
        let mut r = LineReader::new(&long[..]);
        assert!(r.read_line().await.is_err());
    }
}
