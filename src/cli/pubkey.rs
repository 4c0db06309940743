//! `ukey pubkey`: a key's public half as a PEM SubjectPublicKeyInfo, the form `openssl dgst
//! -verify` and `ukey verify --pubkey` read.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use ukey_api::Error;

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, write_output};
use crate::resolve::{ResolvedKey, select_key};

/// Print a key's public key (SubjectPublicKeyInfo, PEM).
#[derive(Debug, Args)]
pub struct PubkeyArgs {
    /// The key: label, hex id, certificate label or PKCS#11 URI.
    #[arg(long, value_name = "K")]
    pub key: String,
    /// Only look on this token.
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Write the PEM here instead of stdout.
    #[arg(long, value_name = "F")]
    pub out: Option<PathBuf>,
}

/// `ukey pubkey --json`
#[derive(Debug, Serialize)]
pub struct PubkeyReport {
    /// The key's PKCS#11 URI.
    pub uri: String,
    /// `sm2`, `p256`, ...
    pub algorithm: String,
    /// SubjectPublicKeyInfo in PEM.
    pub pem: String,
}

impl Render for PubkeyReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.pem.as_bytes())
    }
}

/// The DER SubjectPublicKeyInfo of a key: from the key itself, else from its certificate.
pub fn public_key_der(resolved: &ResolvedKey) -> Result<Vec<u8>, Error> {
    if let Some(spki) = &resolved.key.public_key {
        return Ok(spki.clone());
    }
    if let Some(cert) = resolved.objects.certificate_for(&resolved.key.id) {
        return Ok(cert.info.public_key.clone());
    }
    Err(Error::NotSupported(format!(
        "token \"{}\" does not reveal the public key of \"{}\" and it has no certificate; import its certificate first",
        resolved.carrier.info().label,
        resolved.key.label
    )))
}

/// SubjectPublicKeyInfo DER → PEM (`PUBLIC KEY`).
pub fn public_key_pem(spki: &[u8]) -> Result<String, Error> {
    ukey_api::crypto::pem::public_key_pem(spki)
}

impl Run for PubkeyArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let inventory = ctx.inventory();
        let resolved = select_key(&inventory, self.token.as_deref(), &self.key)?;
        let pem = public_key_pem(&public_key_der(&resolved)?)?;
        let report = PubkeyReport { uri: resolved.uri().to_string(), algorithm: resolved.key.algorithm.name(), pem };
        match &self.out {
            Some(path) => {
                write_output(Some(path), report.pem.as_bytes(), "public key")?;
                if ctx.out.json {
                    ctx.out.emit(&report)?;
                } else {
                    ctx.out.note(&format!("Wrote the public key of \"{}\" to {}", resolved.key.label, path.display()));
                }
                Ok(())
            }
            None => ctx.out.emit(&report),
        }
    }
}
