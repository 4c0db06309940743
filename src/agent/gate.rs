//! The gate every carrier use passes: asked before the operation, told the outcome after.
//!
//! This is where the custody policy and the audit log plug in (issue 6): the service layer builds
//! a [`UseContext`] for each use (who, through which client, which carrier and certificate, which
//! operation, the SM3 of what is signed) and calls [`Gate::authorize`] before touching the
//! carrier and [`Gate::record`] once the outcome is known, refusals included. The agent ships
//! [`PersonalGate`]: personal mode, which allows every use and logs it.

use std::path::PathBuf;

use serde::Serialize;

use ukey_api::CarrierId;

/// The client behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientIdentity {
    /// A web page, by its origin.
    Page {
        /// Canonical origin.
        origin: String,
    },
    /// A local program on the Unix socket, from SO_PEERCRED and `/proc/PID/exe`.
    Program {
        /// Process id.
        pid: u32,
        /// Executable, when readable.
        exe: Option<PathBuf>,
    },
}

impl ClientIdentity {
    /// Short human form for dialogs and logs: the origin, or the program path and pid.
    pub fn describe(&self) -> String {
        match self {
            ClientIdentity::Page { origin } => origin.clone(),
            ClientIdentity::Program { pid, exe: Some(exe) } => format!("{} (pid {pid})", exe.display()),
            ClientIdentity::Program { pid, exe: None } => format!("program with pid {pid}"),
        }
    }
}

/// What is being done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Listing carriers, certificates or keys.
    List,
    /// Making a signature.
    Sign,
    /// Making a web authentication token.
    Authenticate,
    /// Generating a key pair.
    GenerateKey,
    /// Creating a certificate request with a carrier key.
    CreateCsr,
    /// Storing a certificate.
    ImportCertificate,
    /// Changing a PIN.
    ChangePin,
    /// Unblocking the user PIN.
    UnblockPin,
    /// Initialising or resetting a carrier.
    Initialize,
    /// Checking a PIN.
    VerifyPin,
    /// Writing a data object.
    WriteData,
    /// Reading a private data object.
    ReadData,
    /// Deleting a key, certificate or data object.
    DeleteObject,
}

impl Operation {
    /// The phrase dialogs and logs use.
    pub fn describe(self) -> &'static str {
        match self {
            Operation::List => "list certificates",
            Operation::Sign => "sign",
            Operation::Authenticate => "log in (authenticate)",
            Operation::GenerateKey => "generate a key pair",
            Operation::CreateCsr => "create a certificate request",
            Operation::ImportCertificate => "store a certificate",
            Operation::ChangePin => "change the PIN",
            Operation::UnblockPin => "unblock the PIN",
            Operation::Initialize => "initialise (wipe) the carrier",
            Operation::VerifyPin => "check the PIN",
            Operation::WriteData => "write a data object",
            Operation::ReadData => "read a private data object",
            Operation::DeleteObject => "delete an object",
        }
    }
}

/// Everything the policy and the audit need to know about one use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UseContext {
    /// OS user id of the agent (= of the caller: the Unix socket checks it, pages run as the user).
    pub uid: u32,
    /// Login name, when known.
    pub login: Option<String>,
    /// The client.
    pub client: ClientIdentity,
    /// The carrier.
    pub carrier: CarrierId,
    /// SHA-256 fingerprint of the certificate involved, if any.
    pub certificate: Option<String>,
    /// The operation.
    pub operation: Operation,
    /// SM3 of the data signed (the message, or the digest when only a digest was given), hex.
    pub data_sm3: Option<String>,
}

/// What came of a use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// It was done.
    Done,
    /// The gate refused it.
    Refused {
        /// Why.
        reason: String,
    },
    /// It failed; `kind` is the error's stable name (`WrongPin`, `Cancelled`, `TokenRemoved`...).
    Failed {
        /// Error kind.
        kind: String,
    },
}

/// The gate's refusal, phrased for the person refused (whose carrier it is and why).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Policy and audit hook. Both methods run on the agent's runtime: an implementation that does
/// I/O (an fsync'd audit record) should keep it short; the agent answers only after `record`
/// returns, so a use is on record before the client hears of it.
pub trait Gate: Send + Sync {
    /// Allows or refuses a use before anything touches the carrier.
    fn authorize(&self, ctx: &UseContext) -> Result<(), Denied>;

    /// Records the outcome of a use (also called for refusals).
    fn record(&self, ctx: &UseContext, outcome: &Outcome);
}

/// Personal mode: every use is allowed and logged at `info`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PersonalGate;

impl Gate for PersonalGate {
    fn authorize(&self, _ctx: &UseContext) -> Result<(), Denied> {
        Ok(())
    }

    fn record(&self, ctx: &UseContext, outcome: &Outcome) {
        let result = match outcome {
            Outcome::Done => "done".to_string(),
            Outcome::Refused { reason } => format!("refused: {reason}"),
            Outcome::Failed { kind } => format!("failed: {kind}"),
        };
        log::info!(
            "use: {} by {} on {}{}: {result}",
            ctx.operation.describe(),
            ctx.client.describe(),
            ctx.carrier,
            ctx.certificate.as_ref().map(|c| format!(" cert {}", &c[..c.len().min(16)])).unwrap_or_default()
        );
    }
}
