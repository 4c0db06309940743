//! `ukey verify`: checks a signature against a certificate or public key, on the host.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use ukey_api::crypto::{self, SignData};
use ukey_api::mechanism::MechanismKind;
use ukey_api::{Error, Mechanism};

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::{CliError, CliResult};
use crate::cli::output::{Render, read_input};
use crate::cli::sign::parse_mechanism;
use crate::cli::sign_input::{choose_mechanism, digest_message, read_digest};

/// Verify a signature (DER or raw) with a certificate or public key file.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["cert", "pubkey"])))]
pub struct VerifyArgs {
    /// The signer's certificate, PEM or DER.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The signer's public key (SubjectPublicKeyInfo), PEM or DER.
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
    /// The signature, DER or raw r ‖ s.
    #[arg(long, value_name = "F")]
    pub sig: PathBuf,
    /// The signed data (default: stdin).
    #[arg(long = "in", value_name = "F")]
    pub input: Option<PathBuf>,
    /// Mechanism; the key's usual one when left out.
    #[arg(long, value_name = "ALG", value_parser = parse_mechanism)]
    pub alg: Option<MechanismKind>,
    /// SM2 distinguishing id (default 1234567812345678).
    #[arg(long = "id", value_name = "USER_ID")]
    pub user_id: Option<String>,
    /// The input is already the digest.
    #[arg(long)]
    pub prehashed: bool,
}

/// `ukey verify --json` (only printed when the signature is valid; otherwise an error, exit 5).
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Always true in a printed report.
    pub valid: bool,
    /// `sm2`, `p256`, ...
    pub key_algorithm: String,
    /// The mechanism checked.
    pub mechanism: String,
    /// The SM2 distinguishing id, for SM2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sm2_id: Option<String>,
    /// Subject of the certificate, when verified with `--cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Render for VerifyReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        match &self.subject {
            Some(s) => writeln!(out, "Signature OK ({}, signed by {s})", self.mechanism),
            None => writeln!(out, "Signature OK ({}, {} key)", self.mechanism, self.key_algorithm),
        }
    }
}

impl Run for VerifyArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let (path, subject) = match (&self.cert, &self.pubkey) {
            (Some(cert), _) => (cert, true),
            (None, Some(key)) => (key, false),
            (None, None) => return Err(CliError::Usage("give the signer with --cert FILE or --pubkey FILE".into())),
        };
        if self.input.as_deref().is_none_or(|p| p.as_os_str() == "-") && self.sig.as_os_str() == "-" {
            return Err(CliError::Usage(
                "the signature and the data cannot both come from stdin; use --in F or --sig F".into(),
            ));
        }
        let bytes = read_input(Some(path), if subject { "certificate" } else { "public key" })?;
        let named = |e: Error| match e {
            Error::InvalidInput(m) => Error::InvalidInput(format!("{}: {m}", path.display())),
            other => other,
        };
        let (spki, subject) = if subject {
            let cert = ukey_api::CertificateInfo::parse(&bytes).map_err(named)?;
            (cert.public_key, Some(cert.subject))
        } else {
            (crypto::public_key_from_pem_or_der(&bytes).map_err(named)?, None)
        };
        let algorithm = crypto::spki_algorithm(&spki).map_err(named)?;
        let mechanism = choose_mechanism(algorithm, self.alg, self.user_id.as_deref(), self.prehashed)?;
        let signature = read_input(Some(&self.sig), "signature")?;
        let digest = if self.prehashed {
            read_digest(self.input.as_deref(), &mechanism)?
        } else {
            digest_message(self.input.as_deref(), &mechanism, Some(&spki))?.digest
        };
        match crypto::verify_signature(&spki, &mechanism, SignData::Digest(&digest), &signature) {
            Ok(()) => {}
            Err(Error::Crypto(_)) => return Err(CliError::BadSignature(bad_signature_text(algorithm, &mechanism))),
            Err(e) => return Err(e.into()),
        }
        ctx.out.emit(&VerifyReport {
            valid: true,
            key_algorithm: algorithm.name(),
            mechanism: mechanism.name().to_string(),
            sm2_id: sm2_id(&mechanism),
            subject,
        })
    }
}

fn sm2_id(mechanism: &Mechanism) -> Option<String> {
    match mechanism {
        Mechanism::Sm2Sm3 { user_id } => Some(String::from_utf8_lossy(user_id).into_owned()),
        _ => None,
    }
}

fn bad_signature_text(algorithm: ukey_api::KeyAlgorithm, mechanism: &Mechanism) -> String {
    let mut text = format!("it was not made by this {algorithm} key with {} over this input", mechanism.name());
    if let Some(id) = sm2_id(mechanism) {
        text.push_str(&format!(
            " and SM2 id `{id}` (a signer that used another id needs --id; OpenSSL without -sigopt distid: uses an empty one, --id '')"
        ));
    }
    text
}
