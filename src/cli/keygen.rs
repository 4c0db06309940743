//! `ukey keygen`: a new key pair generated on the token; the private key never leaves it.

use std::io::{self, Write};

use clap::Args;
use ukey_api::{Credential, Error, KeyAlgorithm, KeyGenRequest, ObjectId, PinRole};

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::keys::KeyView;
use crate::cli::output::Render;
use crate::resolve::select_carrier;

/// Generate a key pair on a token.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The token (label, serial, carrier id or PKCS#11 URI); may be left out when there is one.
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Key algorithm: sm2, p256, p384, rsa2048 (also rsa3072, rsa4096 where the token can).
    #[arg(long, value_name = "ALG", value_parser = parse_algorithm)]
    pub alg: KeyAlgorithm,
    /// Label for the key (and later its certificate).
    #[arg(long, value_name = "L")]
    pub label: String,
    /// Object id in hex; the token picks one when left out.
    #[arg(long, value_name = "HEX", value_parser = parse_id)]
    pub id: Option<ObjectId>,
}

/// clap parser for `--alg`: an unknown name lists the supported ones.
pub fn parse_algorithm(text: &str) -> Result<KeyAlgorithm, String> {
    text.parse::<KeyAlgorithm>().map_err(|e| e.to_string())
}

/// clap parser for a hex object id.
pub fn parse_id(text: &str) -> Result<ObjectId, String> {
    match ObjectId::from_hex(text) {
        Ok(id) if !id.0.is_empty() => Ok(id),
        Ok(_) => Err("the id is empty; give hex digits like 01".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl Render for KeyView {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "Generated {} key \"{}\" on token \"{}\"", self.algorithm, self.label, self.token)?;
        writeln!(out, "  id:  {}", self.id)?;
        writeln!(out, "  uri: {}", self.uri)
    }
}

impl Run for KeygenArgs {
    fn run(self, ctx: &Context) -> CliResult {
        if self.label.trim().is_empty() {
            return Err(crate::cli::error::CliError::Usage("--label is empty; give the key a name".into()));
        }
        let inventory = ctx.inventory();
        let carrier = select_carrier(&inventory, self.token.as_deref())?;
        let caps = carrier.capabilities()?;
        if !caps.generate.contains(&self.alg) {
            let can: Vec<String> = caps.generate.iter().map(|a| a.name()).collect();
            return Err(Error::NotSupported(format!(
                "token \"{}\" cannot generate {} keys; it can generate: {}",
                carrier.info().label,
                self.alg,
                if can.is_empty() { "none".into() } else { can.join(", ") }
            ))
            .into());
        }
        let pin = ctx.current_pin(PinRole::User, carrier.as_ref())?;
        let request = KeyGenRequest { algorithm: self.alg, label: self.label, id: self.id };
        let key = carrier.generate_key(&request, &Credential::Pin(pin))?;
        let objects = carrier.objects().ok();
        ctx.out.emit(&KeyView::of(carrier.as_ref(), &key, objects.as_ref()))
    }
}
