//! `ukey csr`: a PKCS#10 certificate request signed by a key that stays on its token.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use ukey_api::crypto::{self, CarrierKeySigner};
use ukey_api::{Credential, PinRole};

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, write_output};
use crate::cli::pubkey::public_key_der;
use crate::resolve::select_key;

/// Make a certificate signing request (PEM) for a key on a token.
#[derive(Debug, Args)]
pub struct CsrArgs {
    /// The key: label, hex id, certificate label or PKCS#11 URI.
    #[arg(long, value_name = "K")]
    pub key: String,
    /// Only look on this token.
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Subject distinguished name, e.g. "CN=Alice,O=Example".
    #[arg(long, value_name = "DN")]
    pub subject: String,
    /// Where to write the request (default: stdout).
    #[arg(long, value_name = "F")]
    pub out: Option<PathBuf>,
}

/// `ukey csr --json`
#[derive(Debug, Serialize)]
pub struct CsrReport {
    /// The key's PKCS#11 URI.
    pub key: String,
    /// The subject as requested.
    pub subject: String,
    /// The request in PEM.
    pub pem: String,
    /// The file it was written to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
}

impl Render for CsrReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        match &self.out {
            Some(path) => writeln!(out, "Wrote the certificate request for \"{}\" to {path}", self.subject),
            None => out.write_all(self.pem.as_bytes()),
        }
    }
}

impl Run for CsrArgs {
    fn run(self, ctx: &Context) -> CliResult {
        // Check the subject before anything asks for a PIN.
        let subject = crypto::parse_name(&self.subject)?;
        let inventory = ctx.inventory();
        let resolved = select_key(&inventory, self.token.as_deref(), &self.key)?;
        let spki = public_key_der(&resolved)?;
        let pin = ctx.current_pin(PinRole::User, resolved.carrier.as_ref())?;
        let credential = Credential::Pin(pin);
        let signer = CarrierKeySigner::new(resolved.carrier.as_ref(), resolved.key.id.clone(), spki, &credential)?;
        let der = crypto::build_csr(&signer, &subject, None)?;
        let pem = crypto::pem::csr_pem(&der)?;
        if let Some(path) = &self.out {
            write_output(Some(path), pem.as_bytes(), "certificate request")?;
        }
        ctx.out.emit(&CsrReport {
            key: resolved.uri().to_string(),
            subject: subject.to_string(),
            pem,
            out: self.out.as_ref().map(|p| p.display().to_string()),
        })
    }
}
