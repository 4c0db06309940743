//! `ukey verify`: checks a signature against a certificate or public key, on the host.

use std::path::PathBuf;

use clap::Args;
use ukey_api::mechanism::MechanismKind;

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::cli::sign::parse_mechanism;

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

impl Run for VerifyArgs {
    fn run(self, _ctx: &Context) -> CliResult {
        Err(ukey_api::Error::NotSupported("verification lands with the crypto core".into()).into())
    }
}
