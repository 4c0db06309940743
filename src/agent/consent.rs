//! The holder's say: PIN dialogs and confirmations, worded so the holder sees who asks, for what,
//! with which certificate and a short digest of what is signed, and the tries left after a wrong
//! PIN.
//!
//! One dialog at a time (there is one holder); each dialog races the removal of its carrier, so
//! pulling the key out closes the dialog at once. A refused pairing puts the origin on a cooldown
//! so a page cannot flood the holder with dialogs.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ukey_api::{CarrierInfo, Error, Pin, PinRole};

use crate::agent::gate::{ClientIdentity, Operation};
use crate::agent::origins::Grant;
use crate::agent::pincache::PinCache;
use crate::agent::pinentry::{Dialog, Pinentry};

/// How long a refused origin must wait before it may ask to pair again.
const PAIRING_COOLDOWN: Duration = Duration::from_secs(30);

/// What a PIN is asked for.
#[derive(Debug, Clone)]
pub struct Purpose<'a> {
    /// Who asks.
    pub client: &'a ClientIdentity,
    /// What for.
    pub operation: Operation,
    /// On which carrier.
    pub carrier: &'a CarrierInfo,
    /// Certificate subject, when a certificate is involved.
    pub subject: Option<&'a str>,
    /// SM3 (hex) of what is signed, when something is.
    pub data_sm3: Option<&'a str>,
    /// An extra line, e.g. which site a login token is for.
    pub detail: Option<&'a str>,
    /// Which PIN.
    pub role: PinRole,
}

/// The dialogs.
pub struct Consent {
    pinentry: Pinentry,
    one_dialog: tokio::sync::Mutex<()>,
    /// The optional PIN cache.
    pub cache: PinCache,
    /// Held while a cache miss asks the holder and puts the PIN on the carrier, so concurrent
    /// requests for the same key wait for that PIN instead of each opening a dialog.
    pub cache_fill: tokio::sync::Mutex<()>,
    refused: Mutex<HashMap<String, Instant>>,
}

impl Consent {
    /// Dialogs through `pinentry`, with `cache` (possibly disabled).
    pub fn new(pinentry: Pinentry, cache: PinCache) -> Self {
        Consent {
            pinentry,
            one_dialog: tokio::sync::Mutex::new(()),
            cache,
            cache_fill: tokio::sync::Mutex::new(()),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// Asks for a PIN; `error` is shown above the field (wrong PIN, tries left). Fails with
    /// `TokenRemoved` as soon as `removed` resolves.
    pub async fn pin(
        &self,
        purpose: &Purpose<'_>,
        error: Option<String>,
        removed: impl Future<Output = ()>,
    ) -> Result<Pin, Error> {
        let dialog = Dialog {
            title: "ukey: PIN".into(),
            description: describe(purpose),
            prompt: match purpose.role {
                PinRole::User => "PIN:".into(),
                PinRole::So => "SO PIN / PUK:".into(),
            },
            error,
            ok: Some("Allow".into()),
            cancel: Some("Refuse".into()),
        };
        tokio::select! {
            r = async {
                let _one = self.one_dialog.lock().await;
                self.pinentry.get_pin(&dialog).await
            } => r,
            () = removed => Err(Error::TokenRemoved),
        }
    }

    /// Asks for a new PIN twice (for change and unblock); they must match.
    pub async fn new_pin(&self, purpose: &Purpose<'_>, removed: impl Future<Output = ()>) -> Result<Pin, Error> {
        let base = describe(purpose);
        let work = async {
            let _one = self.one_dialog.lock().await;
            let mut error = None;
            for _ in 0..3 {
                let mut dialog = Dialog {
                    title: "ukey: new PIN".into(),
                    description: format!("{base}\n\nChoose the new PIN."),
                    prompt: "New PIN:".into(),
                    error: error.take(),
                    ok: None,
                    cancel: None,
                };
                let first = self.pinentry.get_pin(&dialog).await?;
                dialog.description = format!("{base}\n\nEnter the new PIN again.");
                dialog.prompt = "Repeat:".into();
                let second = self.pinentry.get_pin(&dialog).await?;
                if first == second {
                    return Ok(first);
                }
                error = Some("The two entries differ; try again.".into());
            }
            Err(Error::PinRejected("the new PIN was entered differently three times".into()))
        };
        tokio::select! {
            r = work => r,
            () = removed => Err(Error::TokenRemoved),
        }
    }

    /// Asks the holder to confirm an operation that needs no PIN here (PIN pad readers).
    pub async fn confirm(&self, purpose: &Purpose<'_>, removed: impl Future<Output = ()>) -> Result<bool, Error> {
        let dialog = Dialog {
            title: "ukey: confirm".into(),
            description: format!("{}\n\nEnter the PIN on the reader's PIN pad after confirming.", describe(purpose)),
            ok: Some("Allow".into()),
            cancel: Some("Refuse".into()),
            ..Dialog::default()
        };
        tokio::select! {
            r = async {
                let _one = self.one_dialog.lock().await;
                self.pinentry.confirm(&dialog).await
            } => r,
            () = removed => Err(Error::TokenRemoved),
        }
    }

    /// Asks the holder whether `origin` may use the agent with `grants`. `already` is checked once
    /// the dialog slot is free, so concurrent requests of one page make one dialog.
    pub async fn confirm_pairing(
        &self,
        origin: &str,
        grants: &BTreeSet<Grant>,
        already: impl Fn() -> bool,
    ) -> Result<bool, Error> {
        if self.cooling_down(origin) {
            return Ok(false);
        }
        let _one = self.one_dialog.lock().await;
        if already() {
            return Ok(true);
        }
        if self.cooling_down(origin) {
            return Ok(false);
        }
        let what = if grants.contains(&Grant::Enroll) {
            "list your certificates, sign, log you in, AND generate keys and store certificates on your carriers"
        } else {
            "list your certificates, and ask you (with your PIN each time) to sign and to log in"
        };
        let yes = self.pairing_code_typed(origin, what).await?;
        if !yes && let Ok(mut r) = self.refused.lock() {
            r.retain(|_, t| t.elapsed() < PAIRING_COOLDOWN);
            r.insert(origin.to_string(), Instant::now());
        }
        Ok(yes)
    }

    /// The pairing dialog. The holder allows a site by typing a short code the dialog shows, not
    /// by pressing a button: in some pinentry programs (GNOME's gcr prompter, curses) Return
    /// presses the OK button, so a yes/no question would let a site in on a reflex. An empty
    /// entry, Escape and Refuse all refuse; a mistyped code gets two more tries.
    async fn pairing_code_typed(&self, origin: &str, what: &str) -> Result<bool, Error> {
        let code = pairing_code()?;
        let mut dialog = Dialog {
            title: "ukey: allow a web site?".into(),
            description: format!(
                "The web site\n\n    {origin}\n\nasks to use ukey. If you allow it, it may {what}.\n\n\
                 Allow only sites you trust. You can revoke it later with `ukey origins revoke`.\n\n\
                 To allow it, type this code: {code}"
            ),
            prompt: "Code:".into(),
            ok: Some("Allow".into()),
            cancel: Some("Refuse".into()),
            ..Dialog::default()
        };
        for _ in 0..3 {
            let typed = match self.pinentry.get_pin(&dialog).await {
                Ok(typed) => typed,
                Err(Error::Cancelled | Error::PinRejected(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            if typed.expose().trim() == code {
                return Ok(true);
            }
            dialog.error = Some(format!("That is not the code. Type {code} to allow the site, or press Refuse."));
        }
        Ok(false)
    }

    fn cooling_down(&self, origin: &str) -> bool {
        self.refused.lock().map(|r| r.get(origin).is_some_and(|t| t.elapsed() < PAIRING_COOLDOWN)).unwrap_or(false)
    }
}

/// The dialog text: who, what, which certificate on which carrier, a short digest.
pub fn describe(p: &Purpose<'_>) -> String {
    let who = match p.client {
        ClientIdentity::Page { origin } => format!("The web site {origin}"),
        other => format!("The program {}", other.describe()),
    };
    let mut text = format!("{who} asks to {}", p.operation.describe());
    if let Some(detail) = p.detail {
        text.push_str(&format!(" {detail}"));
    }
    if let Some(subject) = p.subject {
        text.push_str(&format!(" with the certificate\n    {subject}"));
    }
    text.push_str(&format!("\non {}.", p.carrier.display_name()));
    if let Some(sm3) = p.data_sm3 {
        text.push_str(&format!("\n\nWhat is signed (SM3): {}", short_digest(sm3)));
    }
    if p.carrier.software {
        text.push_str("\n\nThis is a SOFTWARE token, not a hardware carrier.");
    }
    text
}

/// The first 16 hex digits in groups of four, enough for the holder to compare with the
/// application's display.
pub fn short_digest(hex: &str) -> String {
    let head: Vec<String> =
        hex.as_bytes().chunks(4).take(4).map(|c| String::from_utf8_lossy(c).to_ascii_uppercase()).collect();
    format!("{} …", head.join(" "))
}

/// Four random digits: enough that only a holder who read the dialog types them. Bytes of 250
/// and above are drawn again, so every digit is equally likely.
fn pairing_code() -> Result<String, Error> {
    let mut code = String::with_capacity(4);
    while code.len() < 4 {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte)
            .map_err(|e| Error::Crypto(format!("the system random generator failed ({e}); pairing was not offered")))?;
        if byte[0] < 250 {
            code.push(char::from(b'0' + byte[0] % 10));
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ukey_api::{CarrierId, CarrierKind};

    #[test]
    fn dialog_names_client_certificate_and_digest() {
        let info = CarrierInfo {
            id: CarrierId::new(CarrierKind::Soft, &["0001"]),
            kind: CarrierKind::Soft,
            label: "Alice".into(),
            manufacturer: "ukey".into(),
            model: "soft".into(),
            serial: "0001".into(),
            location: "/tmp".into(),
            atr: None,
            usb: None,
            catalog_entry: None,
            software: true,
            read_only: false,
            initialized: true,
        };
        let client = ClientIdentity::Page { origin: "https://bank.example".into() };
        let sm3 = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
        let text = describe(&Purpose {
            client: &client,
            operation: Operation::Sign,
            carrier: &info,
            subject: Some("CN=Alice"),
            data_sm3: Some(sm3),
            detail: None,
            role: PinRole::User,
        });
        assert!(
            text.contains("https://bank.example") && text.contains("CN=Alice") && text.contains("66C7 F0F4"),
            "{text}"
        );
        assert!(text.contains("SOFTWARE"));
    }

    #[test]
    fn pairing_codes_are_four_digits_and_vary() {
        let codes: std::collections::BTreeSet<String> = (0..20).map(|_| super::pairing_code().unwrap()).collect();
        assert!(codes.iter().all(|c| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit())), "{codes:?}");
        assert!(codes.len() > 10, "codes repeat far too often: {codes:?}");
    }
}
