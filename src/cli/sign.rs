//! `ukey sign`: signs a message (or a digest) with a key on a token.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;
use ukey_api::crypto::{self, SignData, SignatureFormat};
use ukey_api::mechanism::MechanismKind;
use ukey_api::{Credential, Error, InputForm, PinRole};

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::output::{Render, stdout_is_terminal, write_output};
use crate::cli::pubkey::public_key_der;
use crate::cli::sign_input::{choose_mechanism, digest_message, message_input, read_digest};
use crate::resolve::select_key;

/// Sign data with a key on a token. The signature is DER by default, the form
/// `openssl dgst -verify` reads.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The key: label, hex id, certificate label or PKCS#11 URI.
    #[arg(long, value_name = "K")]
    pub key: String,
    /// Only look on this token.
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Mechanism: sm2-sm3, ecdsa-sha256, ecdsa-sha384, rsa-pkcs1-sha256, rsa-pss-sha256; the
    /// key's usual one when left out.
    #[arg(long, value_name = "ALG", value_parser = parse_mechanism)]
    pub alg: Option<MechanismKind>,
    /// SM2 distinguishing id (default 1234567812345678).
    #[arg(long = "id", value_name = "USER_ID")]
    pub user_id: Option<String>,
    /// The data to sign (default: stdin).
    #[arg(long = "in", value_name = "F")]
    pub input: Option<PathBuf>,
    /// Where to write the signature (default: stdout).
    #[arg(long, value_name = "F")]
    pub out: Option<PathBuf>,
    /// Signature encoding: der (ASN.1 SEQUENCE of r and s, for OpenSSL) or raw (r ‖ s).
    #[arg(long, value_enum, default_value_t = SigFormat::Der)]
    pub format: SigFormat,
    /// The input is already the digest (SM2: SM3(Z ‖ M)), raw bytes or hex.
    #[arg(long)]
    pub prehashed: bool,
}

/// How a signature is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SigFormat {
    /// ASN.1 DER (ECDSA-Sig-Value / SM2Signature); RSA signatures are the same in both forms.
    Der,
    /// r ‖ s, each the curve's size.
    Raw,
}

/// clap parser for `--alg`: an unknown name lists the supported ones.
pub fn parse_mechanism(text: &str) -> Result<MechanismKind, String> {
    text.parse::<MechanismKind>().map_err(|e| e.to_string())
}

impl From<SigFormat> for SignatureFormat {
    fn from(f: SigFormat) -> Self {
        match f {
            SigFormat::Der => SignatureFormat::Der,
            SigFormat::Raw => SignatureFormat::Raw,
        }
    }
}

/// `ukey sign --json`
#[derive(Debug, Serialize)]
pub struct SignReport {
    /// The key's PKCS#11 URI.
    pub key: String,
    /// The mechanism used (`sm2-sm3`, `ecdsa-sha256`, ...).
    pub mechanism: String,
    /// The SM2 distinguishing id, for SM2 signatures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sm2_id: Option<String>,
    /// `der` or `raw`.
    pub format: &'static str,
    /// The digest that was signed, hex (SM2: SM3(Z ‖ M)).
    pub digest: String,
    /// The signature, base64.
    pub signature: String,
    /// The file it was written to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
}

impl Render for SignReport {
    fn render(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "Signed with {} ({}), {} signature written to {}",
            self.key,
            self.mechanism,
            self.format,
            self.out.as_deref().unwrap_or("stdout")
        )
    }
}

impl Run for SignArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let inventory = ctx.inventory();
        let resolved = select_key(&inventory, self.token.as_deref(), &self.key)?;
        let algorithm = resolved.key.algorithm;
        let mechanism = choose_mechanism(algorithm, self.alg, self.user_id.as_deref(), self.prehashed)?;
        let Some(form) = resolved.carrier.sign_input_form(mechanism.kind())? else {
            let caps = resolved.carrier.capabilities()?;
            let offered: Vec<&str> = caps.sign.iter().map(|(m, _)| m.as_str()).collect();
            return Err(Error::NotSupported(format!(
                "token \"{}\" cannot make {} signatures; it offers: {}",
                resolved.carrier.info().label,
                mechanism.name(),
                offered.join(", ")
            ))
            .into());
        };
        let spki = public_key_der(&resolved).ok();
        let input = if self.prehashed {
            let digest = read_digest(self.input.as_deref(), &mechanism)?;
            crypto::prepare_input(&mechanism, spki.as_deref(), SignData::Digest(&digest))?
        } else if form == InputForm::Message {
            message_input(self.input.as_deref(), &mechanism, spki.as_deref())?
        } else {
            digest_message(self.input.as_deref(), &mechanism, spki.as_deref())?
        };
        crypto::check_input_form(&input, form)?;
        let pin = ctx.current_pin(PinRole::User, resolved.carrier.as_ref())?;
        let raw = resolved.carrier.sign(&resolved.key.id, &mechanism, &input, &Credential::Pin(pin))?;
        let signature = crypto::encode_signature(algorithm, &raw, self.format.into())?;
        let report = SignReport {
            key: resolved.uri().to_string(),
            mechanism: mechanism.name().to_string(),
            sm2_id: match &mechanism {
                ukey_api::Mechanism::Sm2Sm3 { user_id } => Some(String::from_utf8_lossy(user_id).into_owned()),
                _ => None,
            },
            format: match self.format {
                SigFormat::Der => "der",
                SigFormat::Raw => "raw",
            },
            digest: hex::encode(&input.digest),
            signature: crypto::encoding::base64_encode(&signature),
            out: self.out.as_ref().map(|p| p.display().to_string()),
        };
        match (&self.out, ctx.out.json) {
            (Some(path), _) => {
                write_output(Some(path), &signature, "signature")?;
                ctx.out.emit(&report)
            }
            (None, true) => ctx.out.emit(&report),
            (None, false) if stdout_is_terminal() => {
                ctx.out
                    .note("The signature is binary; here it is in hex. Use --out F or redirect stdout for the bytes.");
                write_output(None, format!("{}\n", hex::encode(&signature)).as_bytes(), "signature")
            }
            (None, false) => write_output(None, &signature, "signature"),
        }
    }
}
