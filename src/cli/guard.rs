//! The custody gate on the CLI's direct carrier path: `ukey sign`, `keygen`, `csr`,
//! `cert import`, `pin change|unblock` and `token init` pass it exactly like the agent's uses, so
//! the policy cannot be sidestepped by calling the CLI instead of the agent.
//!
//! The calling account is the process's own (real) uid; the client is the `ukey` executable and
//! its pid. Notices (no policy in force, development mode, an unregistered carrier under `warn`)
//! are printed as warnings on every use. A use whose outcome cannot be put on record fails, and
//! its result (a signature, say) is not written out.

use std::sync::OnceLock;

use ukey_api::{Carrier, Error, HashAlg};

use crate::agent::gate::{ClientIdentity, Gate, Operation, Outcome, UseContext};
use crate::cli::context::Context;
use crate::cli::error::{CliError, CliResult};
use crate::policy::gate::CustodyGate;

static GATE: OnceLock<Result<CustodyGate, String>> = OnceLock::new();

/// The process's gate (built on first use).
pub fn gate() -> CliResult<&'static CustodyGate> {
    GATE.get_or_init(|| CustodyGate::from_env().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| CliError::Refused(format!("no use without an audit record: {e}")))
}

/// What a CLI use is.
#[derive(Debug, Clone, Copy)]
pub struct CliUse<'a> {
    /// The operation.
    pub operation: Operation,
    /// SHA-256 fingerprint of the certificate involved.
    pub certificate: Option<&'a str>,
    /// The data signed (its SM3 goes on record).
    pub data: Option<&'a [u8]>,
}

/// Runs `work` on `carrier` behind the custody gate: examine, authorize, work, record.
pub fn guarded<T>(
    ctx: &Context,
    carrier: &dyn Carrier,
    what: CliUse<'_>,
    work: impl FnOnce() -> Result<T, Error>,
) -> CliResult<T> {
    let gate = gate()?;
    if gate.needs_examination(carrier.info()) {
        gate.examine(carrier);
    }
    let use_ctx = UseContext {
        uid: rustix::process::getuid().as_raw(),
        login: crate::policy::accounts::login_of(rustix::process::getuid().as_raw()),
        client: ClientIdentity::Program { pid: std::process::id(), exe: std::env::current_exe().ok() },
        carrier: carrier.info().id.clone(),
        info: carrier.info().clone(),
        certificate: what.certificate.map(str::to_string),
        operation: what.operation,
        data_sm3: what.data.map(|d| hex::encode(HashAlg::Sm3.digest(d))),
    };
    let permit = match gate.authorize(&use_ctx) {
        Ok(p) => p,
        Err(denied) => {
            if let Err(e) = gate.record(&use_ctx, &Outcome::Refused { reason: denied.0.clone() }) {
                ctx.out.warn(&format!("the refusal could not be recorded: {e}"));
            }
            return Err(CliError::Refused(denied.0));
        }
    };
    for notice in &permit.notices {
        ctx.out.warn(notice);
    }
    let result = work();
    let outcome = match &result {
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::Failed { kind: e.kind().to_string() },
    };
    permit.finish(&outcome).map_err(|d| CliError::Refused(d.0))?;
    Ok(result?)
}
