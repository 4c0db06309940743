//! Who asks the holder for the PIN: the program through `C_Login` (the PKCS#11 norm), or the
//! agent for each signature.
//!
//! - [`PinMode::Login`] (the default): tokens report `CKF_LOGIN_REQUIRED`, private keys are found
//!   only after `C_Login`, and signing needs a login. The login is answered by the agent's PIN
//!   dialog (protected authentication path) or by a PIN the program passes. Programs that hold a
//!   PIN themselves (`pkcs11-tool --pin`, a `pin-value` in a `pkcs11:` URI, unattended jobs) keep
//!   working without anyone at the screen.
//! - [`PinMode::Agent`]: tokens do not report `CKF_LOGIN_REQUIRED`, private keys are listed
//!   before login (`CKA_PRIVATE` false), and `C_Sign` without a login has the agent ask the
//!   holder through its pinentry for that signature, exactly as for a web page (the agent's PIN
//!   cache policy applies). Browsers need this: headless Chromium never calls `C_Login`, and a
//!   desktop browser would otherwise ask for the PIN in its own password box. A program that
//!   logs in anyway still signs on its login.
//!
//! Either way every signature passes the agent's custody policy and lands in its audit log.
//!
//! Chosen by the environment variable [`PIN_MODE_ENV`] of the program that loads the module,
//! read once at `C_Initialize`: `agent` or `login`. For a desktop session, set it in
//! `~/.config/environment.d/ukey.conf`; for one program, in its launcher.

/// Environment variable choosing the PIN mode: `agent` or `login` (default).
pub const PIN_MODE_ENV: &str = "UKEY_PKCS11_PIN";

/// Who asks for the PIN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PinMode {
    /// The program logs in (`CKF_LOGIN_REQUIRED`); the login covers its signatures.
    #[default]
    Login,
    /// No login required; the agent asks the holder for each signature.
    Agent,
}

impl PinMode {
    /// The mode the environment chooses. An unknown value is named in a warning and the default
    /// mode is used: refusing to load would leave the program with no carriers and no reason.
    pub fn from_env() -> Self {
        match std::env::var_os(PIN_MODE_ENV) {
            None => PinMode::default(),
            Some(v) => match v.to_str().and_then(PinMode::parse) {
                Some(mode) => mode,
                None => {
                    log::warn!(
                        "{PIN_MODE_ENV}={} is not a PIN mode; use `agent` (the agent asks for the PIN at each \
                         signature) or `login` (the program logs in). Using `login`.",
                        v.to_string_lossy()
                    );
                    PinMode::default()
                }
            },
        }
    }

    /// Parses `agent` or `login` (case-insensitive, surrounding blanks ignored; empty is the default).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "agent" => Some(PinMode::Agent),
            "login" | "" => Some(PinMode::Login),
            _ => None,
        }
    }

    /// Whether tokens report `CKF_LOGIN_REQUIRED` and hide private keys until login.
    pub fn login_required(self) -> bool {
        self == PinMode::Login
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(PinMode::parse("agent"), Some(PinMode::Agent));
        assert_eq!(PinMode::parse(" Agent\n"), Some(PinMode::Agent));
        assert_eq!(PinMode::parse("login"), Some(PinMode::Login));
        assert_eq!(PinMode::parse(""), Some(PinMode::Login));
        assert_eq!(PinMode::parse("pinpad"), None);
        assert!(PinMode::Login.login_required());
        assert!(!PinMode::Agent.login_required());
    }
}
