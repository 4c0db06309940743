//! `ukey sign`: signs a message (or a digest) with a key on a token.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ukey_api::mechanism::MechanismKind;

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;

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

impl Run for SignArgs {
    fn run(self, _ctx: &Context) -> CliResult {
        Err(ukey_api::Error::NotSupported("signing lands with the crypto core".into()).into())
    }
}
