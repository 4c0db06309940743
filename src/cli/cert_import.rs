//! `ukey cert import`: stores a certificate next to its private key on a token.
//!
//! A certificate is only useful beside its key, so one whose public key matches no key on the
//! token is refused before anything is written.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use ukey_api::{CertificateImport, CertificateInfo, Credential, Error, PinRole};

use crate::cli::Run;
use crate::cli::certs::CertView;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, read_input};
use crate::resolve::select_carrier;

/// Work with certificates on a token.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Import a certificate (PEM or DER) for a key already on the token.
    Import(ImportArgs),
}

impl Run for CertCommand {
    fn run(self, ctx: &Context) -> CliResult {
        match self {
            CertCommand::Import(args) => args.run(ctx),
        }
    }
}

/// `ukey cert import --token T [--label L] FILE`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The token; may be left out when there is one.
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Label for the certificate; defaults to the label of its key.
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
    /// The certificate file, PEM or DER (`-` for stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Human output of an import.
struct Imported(CertView);

impl serde::Serialize for Imported {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Render for Imported {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        let c = &self.0;
        writeln!(out, "Imported certificate \"{}\" on token \"{}\"", c.label, c.token)?;
        writeln!(out, "  subject: {}", c.subject)?;
        writeln!(out, "  issuer:  {}", c.issuer)?;
        writeln!(out, "  valid:   {} to {}", c.not_before, c.not_after)?;
        writeln!(out, "  sha256:  {}", c.sha256_fingerprint)?;
        writeln!(out, "  uri:     {}", c.uri)
    }
}

impl Run for ImportArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let bytes = read_input(Some(&self.file), "certificate file")?;
        let cert = CertificateInfo::parse(&bytes).map_err(|e| match e {
            Error::InvalidInput(m) => Error::InvalidInput(format!("{}: {m}", self.file.display())),
            other => other,
        })?;
        let inventory = ctx.inventory();
        let carrier = select_carrier(&inventory, self.token.as_deref())?;
        let objects = carrier.objects()?;
        let matching = objects.keys.iter().find(|k| k.public_key.as_deref() == Some(cert.public_key.as_slice()));
        let all_keys_known = objects.keys.iter().all(|k| k.public_key.is_some());
        if matching.is_none() && all_keys_known {
            let keys: Vec<String> = objects.keys.iter().map(|k| format!("\"{}\" ({})", k.label, k.algorithm)).collect();
            return Err(Error::InvalidInput(format!(
                "the certificate for \"{}\" matches no key on token \"{}\" (keys there: {}); import the certificate issued for a key on this token (`ukey csr` makes the request), nothing was written",
                cert.subject,
                carrier.info().label,
                if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
            ))
            .into());
        }
        let pin = ctx.current_pin(PinRole::User, carrier.as_ref())?;
        let request =
            CertificateImport { der: cert.der.clone(), label: self.label, id: matching.map(|k| k.id.clone()) };
        let stored = carrier.import_certificate(&request, &Credential::Pin(pin))?;
        ctx.out.emit(&Imported(CertView::of(carrier.as_ref(), &stored, true)))
    }
}
