//! `ukey csr`: a PKCS#10 certificate request signed by a key that stays on its token.

use std::path::PathBuf;

use clap::Args;

use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;

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

impl Run for CsrArgs {
    fn run(self, _ctx: &Context) -> CliResult {
        Err(ukey_api::Error::NotSupported("CSRs land with the crypto core".into()).into())
    }
}
