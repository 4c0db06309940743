//! `ukey certs`: the certificates on one token or on all of them.

use std::io::{self, Write};

use clap::Args;
use serde::Serialize;
use ukey_api::uri::ObjectType;
use ukey_api::{Carrier, CertificateObject, ObjectProblem, Pkcs11Uri};

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, Table, utc_time};
use crate::resolve::filter_carriers;

/// List certificates and whether each has its private key on the token.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Only this token (label, serial, carrier id or PKCS#11 URI).
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
}

/// `ukey certs --json`
#[derive(Debug, Serialize)]
pub struct CertsReport {
    /// Every certificate found.
    pub certificates: Vec<CertView>,
    /// Objects or tokens that could not be read.
    pub problems: Vec<ProblemView>,
}

/// One certificate, as `ukey certs --json` shows it.
#[derive(Debug, Serialize)]
pub struct CertView {
    /// Label of the token holding it.
    pub token: String,
    /// Serial of that token.
    pub token_serial: String,
    /// Label of the certificate object.
    pub label: String,
    /// Object id (hex) pairing it with its key.
    pub id: String,
    /// PKCS#11 URI of the certificate.
    pub uri: String,
    /// Subject (RFC 4514).
    pub subject: String,
    /// Issuer (RFC 4514).
    pub issuer: String,
    /// Serial number (hex).
    pub serial: String,
    /// Start of validity (RFC 3339, UTC).
    pub not_before: String,
    /// End of validity (RFC 3339, UTC).
    pub not_after: String,
    /// Key usage bits by name.
    pub key_usage: Vec<String>,
    /// `sm2`, `p256`, `p384`, `rsa2048`, ... or null when ukey does not know it.
    pub key_algorithm: Option<String>,
    /// SHA-256 of the DER, hex.
    pub sha256_fingerprint: String,
    /// The private key with the same id is on the token.
    pub has_private_key: bool,
    /// The certificate in PEM.
    pub pem: String,
}

/// Something that could not be read, with where it was.
#[derive(Debug, Serialize)]
pub struct ProblemView {
    /// Token label.
    pub token: String,
    /// Object (or the whole token).
    pub object: String,
    /// What is wrong.
    pub reason: String,
}

impl CertView {
    /// Describes a certificate on a carrier.
    pub fn of(carrier: &dyn Carrier, cert: &CertificateObject, has_private_key: bool) -> Self {
        let info = carrier.info();
        let c = &cert.info;
        CertView {
            token: info.label.clone(),
            token_serial: info.serial.clone(),
            label: cert.label.clone(),
            id: cert.id.to_hex(),
            uri: Pkcs11Uri::for_object(info, &cert.id, &cert.label, ObjectType::Cert).to_string(),
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            serial: c.serial.clone(),
            not_before: utc_time(c.not_before),
            not_after: utc_time(c.not_after),
            key_usage: c.key_usage.clone(),
            key_algorithm: c.key_algorithm.map(|a| a.name()),
            sha256_fingerprint: c.sha256_fingerprint.clone(),
            has_private_key,
            pem: ukey_api::crypto::pem::certificate_pem(&c.der).unwrap_or_default(),
        }
    }
}

/// Turns a carrier's object problems into report rows.
pub fn problem_views(carrier: &dyn Carrier, problems: &[ObjectProblem]) -> Vec<ProblemView> {
    problems
        .iter()
        .map(|p| ProblemView {
            token: carrier.info().label.clone(),
            object: p.object.clone(),
            reason: p.reason.clone(),
        })
        .collect()
}

impl Render for CertsReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.certificates.is_empty() {
            writeln!(out, "No certificates found. Import one with `ukey cert import --token T FILE`.")?;
        } else {
            let mut table =
                Table::new(&["TOKEN", "LABEL", "ID", "SUBJECT", "ISSUER", "NOT AFTER", "ALG", "KEY", "SHA-256"]);
            for c in &self.certificates {
                table.row(vec![
                    c.token.clone(),
                    c.label.clone(),
                    c.id.clone(),
                    c.subject.clone(),
                    c.issuer.clone(),
                    c.not_after.clone(),
                    c.key_algorithm.clone().unwrap_or_else(|| "?".into()),
                    if c.has_private_key { "yes" } else { "no" }.into(),
                    c.sha256_fingerprint.chars().take(16).collect(),
                ]);
            }
            table.write(out)?;
        }
        write_problems(out, &self.problems)
    }
}

/// Prints the unreadable objects under a listing.
pub fn write_problems(out: &mut dyn Write, problems: &[ProblemView]) -> io::Result<()> {
    for p in problems {
        writeln!(
            out,
            "warning: on token {}: {}: {}",
            crate::cli::output::sanitize(&p.token),
            crate::cli::output::sanitize(&p.object),
            crate::cli::output::sanitize(&p.reason)
        )?;
    }
    Ok(())
}

impl Run for CertsArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let inventory = ctx.inventory();
        let carriers = filter_carriers(&inventory, self.token.as_deref())?;
        let mut report = CertsReport { certificates: Vec::new(), problems: Vec::new() };
        for carrier in &carriers {
            match carrier.objects() {
                Ok(objects) => {
                    for cert in &objects.certificates {
                        let has_key = objects.key_for(&cert.id).is_some();
                        report.certificates.push(CertView::of(carrier.as_ref(), cert, has_key));
                    }
                    report.problems.extend(problem_views(carrier.as_ref(), &objects.problems));
                }
                Err(e) if self.token.is_some() => return Err(e.into()),
                Err(e) => report.problems.push(ProblemView {
                    token: carrier.info().label.clone(),
                    object: "(token)".into(),
                    reason: e.to_string(),
                }),
            }
        }
        for p in &inventory.problems {
            ctx.out.note(&format!("warning: {}: {}", p.driver, p.message));
        }
        ctx.out.emit(&report)
    }
}
