//! `ukey keys`: the private keys on one token or on all of them, with their certificates.

use std::io::{self, Write};

use clap::Args;
use serde::Serialize;
use ukey_api::{Carrier, KeyObject, ObjectList};

use crate::cli::Run;
use crate::cli::certs::{ProblemView, problem_views, write_problems};
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, Table};
use crate::resolve::{filter_carriers, key_uri};

/// List private keys and the certificate paired with each.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Only this token (label, serial, carrier id or PKCS#11 URI).
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
}

/// `ukey keys --json`
#[derive(Debug, Serialize)]
pub struct KeysReport {
    /// Every key found.
    pub keys: Vec<KeyView>,
    /// Objects or tokens that could not be read.
    pub problems: Vec<ProblemView>,
}

/// One key, as `ukey keys --json` (and `ukey keygen --json`) show it.
#[derive(Debug, Serialize)]
pub struct KeyView {
    /// Label of the token holding it.
    pub token: String,
    /// Serial of that token.
    pub token_serial: String,
    /// Key label.
    pub label: String,
    /// Object id (hex) pairing it with its certificate.
    pub id: String,
    /// PKCS#11 URI of the key: the unambiguous `--key` value.
    pub uri: String,
    /// `sm2`, `p256`, `p384`, `rsa2048`, ...
    pub algorithm: String,
    /// Signature mechanisms the key can make here.
    pub mechanisms: Vec<String>,
    /// Every signature needs a fresh PIN.
    pub always_authenticate: bool,
    /// Subject of the paired certificate, or null.
    pub certificate_subject: Option<String>,
    /// SHA-256 fingerprint of the paired certificate, or null.
    pub certificate_sha256: Option<String>,
}

impl KeyView {
    /// Describes a key with its carrier's objects (for the paired certificate).
    pub fn of(carrier: &dyn Carrier, key: &KeyObject, objects: Option<&ObjectList>) -> Self {
        let info = carrier.info();
        let cert = objects.and_then(|o| o.certificate_for(&key.id));
        KeyView {
            token: info.label.clone(),
            token_serial: info.serial.clone(),
            label: key.label.clone(),
            id: key.id.to_hex(),
            uri: key_uri(info, key).to_string(),
            algorithm: key.algorithm.name(),
            mechanisms: key.mechanisms.iter().map(|m| m.as_str().to_string()).collect(),
            always_authenticate: key.always_authenticate,
            certificate_subject: cert.map(|c| c.info.subject.clone()),
            certificate_sha256: cert.map(|c| c.info.sha256_fingerprint.clone()).or_else(|| key.certificate.clone()),
        }
    }
}

impl Render for KeysReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.keys.is_empty() {
            writeln!(out, "No keys found. Generate one with `ukey keygen --token T --alg sm2 --label NAME`.")?;
        } else {
            let mut table = Table::new(&["TOKEN", "LABEL", "ID", "ALG", "CERTIFICATE", "URI"]);
            for k in &self.keys {
                table.row(vec![
                    k.token.clone(),
                    k.label.clone(),
                    k.id.clone(),
                    k.algorithm.clone(),
                    k.certificate_subject.clone().unwrap_or_else(|| "-".into()),
                    k.uri.clone(),
                ]);
            }
            table.write(out)?;
        }
        write_problems(out, &self.problems)
    }
}

impl Run for KeysArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let inventory = ctx.inventory();
        let carriers = filter_carriers(&inventory, self.token.as_deref())?;
        let mut report = KeysReport { keys: Vec::new(), problems: Vec::new() };
        for carrier in &carriers {
            match carrier.objects() {
                Ok(objects) => {
                    for key in &objects.keys {
                        report.keys.push(KeyView::of(carrier.as_ref(), key, Some(&objects)));
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
