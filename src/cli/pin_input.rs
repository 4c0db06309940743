//! Where PINs come from: a file flag, an environment variable, or a no-echo prompt on the
//! terminal — never a plain command-line argument, which other users can read in the process
//! list and which lands in shell history.
//!
//! | PIN                               | file flag        | environment    |
//! |-----------------------------------|------------------|----------------|
//! | the user PIN                      | `--pin-file`     | `UKEY_PIN`     |
//! | the SO PIN / PUK (also: to set)   | `--so-pin-file`  | `UKEY_SO_PIN`  |
//! | a new PIN (change, unblock, init) | `--new-pin-file` | `UKEY_NEW_PIN` |
//!
//! The file flag wins over the variable, the variable over the prompt. A PIN to be set is asked
//! twice on a terminal. Values go straight into [`ukey_api::Pin`], which refuses empty values and
//! wipes itself on drop.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use ukey_api::{Error, Pin, PinRole};
use zeroize::Zeroize;

use crate::cli::error::{CliError, CliResult};

/// The PIN-source flags of the command line.
#[derive(Debug, Clone, Default)]
pub struct PinInput {
    /// `--pin-file`
    pub pin_file: Option<PathBuf>,
    /// `--so-pin-file`
    pub so_pin_file: Option<PathBuf>,
    /// `--new-pin-file`
    pub new_pin_file: Option<PathBuf>,
}

/// One place a PIN can come from.
struct Source<'a> {
    file: Option<&'a Path>,
    flag: &'static str,
    env: &'static str,
}

impl PinInput {
    /// The current PIN of `role` for the token `token` (a name for the prompt).
    pub fn current(&self, role: PinRole, token: &str) -> CliResult<Pin> {
        let (source, what) = match role {
            PinRole::User => (self.user_source(), "user PIN"),
            PinRole::So => (self.so_source(), "SO PIN"),
        };
        obtain(&source, what, &format!("{} for {token}: ", capitalise(what)), false)
    }

    /// A new PIN for `role` (change, unblock, init), asked twice on a terminal.
    pub fn new_pin(&self, role: PinRole, token: &str) -> CliResult<Pin> {
        let what = match role {
            PinRole::User => "new user PIN",
            PinRole::So => "new SO PIN",
        };
        let source = Source { file: self.new_pin_file.as_deref(), flag: "--new-pin-file", env: "UKEY_NEW_PIN" };
        obtain(&source, what, &format!("{} for {token}: ", capitalise(what)), true)
    }

    /// The SO PIN to give a token being created: from the SO PIN sources, asked twice on a
    /// terminal.
    pub fn so_pin_to_set(&self, token: &str) -> CliResult<Pin> {
        obtain(&self.so_source(), "SO PIN", &format!("Choose the SO PIN for {token}: "), true)
    }

    fn user_source(&self) -> Source<'_> {
        Source { file: self.pin_file.as_deref(), flag: "--pin-file", env: "UKEY_PIN" }
    }

    fn so_source(&self) -> Source<'_> {
        Source { file: self.so_pin_file.as_deref(), flag: "--so-pin-file", env: "UKEY_SO_PIN" }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn obtain(source: &Source<'_>, what: &str, prompt: &str, confirm: bool) -> CliResult<Pin> {
    if let Some(path) = source.file {
        return from_file(path, what);
    }
    if let Ok(value) = std::env::var(source.env) {
        return checked(value, &format!("the {} variable", source.env));
    }
    if std::env::var_os(source.env).is_some() {
        return Err(Error::PinRejected(format!("the {} variable is not valid UTF-8", source.env)).into());
    }
    let unavailable = || CliError::PinUnavailable { what: what.to_string(), flag: source.flag, env: source.env };
    if !(std::io::stdin().is_terminal() || std::io::stderr().is_terminal()) {
        return Err(unavailable());
    }
    let first = rpassword::prompt_password(prompt).map_err(|_| unavailable())?;
    let pin = checked(first, "the terminal")?;
    if confirm {
        let again = rpassword::prompt_password(format!("Repeat the {what}: ")).map_err(|_| unavailable())?;
        let again = checked(again, "the terminal")?;
        if again != pin {
            return Err(CliError::PinMismatch(what.to_string()));
        }
    }
    Ok(pin)
}

/// Reads a PIN file: the first line is the PIN (a trailing newline is ignored).
fn from_file(path: &Path, what: &str) -> CliResult<Pin> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("cannot read the {what} file {}", path.display()), e))?;
    warn_if_readable_by_others(path);
    match String::from_utf8(bytes) {
        Ok(text) => checked(text, &format!("the file {}", path.display())),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(Error::PinRejected(format!("the {what} file {} is not UTF-8 text", path.display())).into())
        }
    }
}

/// Builds a [`Pin`], naming the source (never the value) when it is refused.
fn checked(mut value: String, origin: &str) -> CliResult<Pin> {
    match Pin::new(std::mem::take(&mut value)) {
        Ok(pin) => Ok(pin),
        Err(Error::PinRejected(reason)) => Err(Error::PinRejected(format!("{reason} (it came from {origin})")).into()),
        Err(other) => Err(other.into()),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "ukey: warning: the PIN file {} can be read by other users; restrict it with `chmod 600`",
            crate::cli::output::sanitize(&path.display().to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_wins_and_empty_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("pin");
        std::fs::write(&good, "4321\n").unwrap();
        let input = PinInput { pin_file: Some(good), ..Default::default() };
        assert_eq!(input.current(PinRole::User, "t").unwrap().expose(), "4321");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let input = PinInput { pin_file: Some(empty.clone()), ..Default::default() };
        let err = input.current(PinRole::User, "t").unwrap_err();
        assert_eq!(err.kind(), "PinRejected");
        assert!(err.to_string().contains(&empty.display().to_string()), "{err}");
    }

    #[test]
    fn missing_file_names_it() {
        let input = PinInput { so_pin_file: Some("/nonexistent/so".into()), ..Default::default() };
        let err = input.current(PinRole::So, "t").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/so"), "{err}");
    }
}
