//! The gate every carrier use passes: asked before the operation, told the outcome after.
//!
//! This is where the custody policy and the audit log plug in (issue 6): the service layer builds
//! a [`UseContext`] for each use (who, through which client, which carrier and certificate, which
//! operation, the SM3 of what is signed) and calls [`Gate::authorize`] before touching the
//! carrier and [`Gate::record`] once the outcome is known, refusals included. The agent ships
//! [`PersonalGate`]: personal mode, which allows every use and logs it.
//!
//! Issue 6 turned `authorize` into the start of a use that returns a [`Permit`] (holding the
//! carrier's in-use marker and with the intent already on record) and made recording fallible:
//! when the audit log cannot be written the use is refused and its result never delivered.

use std::path::PathBuf;

use serde::Serialize;

use ukey_api::{Carrier, CarrierId, CarrierInfo};

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
    /// Who the carrier is (model, serial, kind): what the custody policy decides on.
    pub info: CarrierInfo,
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

/// The gate's refusal, phrased for the person refused (whose carrier it is and why). Also what
/// an audit failure becomes: a use that cannot be put on record is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// How an allowed use settles its outcome (the gate's side of a [`Permit`]).
pub trait Settle: Send + Sync {
    /// Records the outcome; an error means it could not be recorded.
    fn settle(&mut self, outcome: &Outcome) -> Result<(), Denied>;
}

/// An allowed use. Keep it until the outcome is known, then [`Permit::finish`] it: while it
/// lives the carrier is marked in use by this account, and the gate has already put the use's
/// intent on record. A permit dropped without `finish` (a cancelled request) records the use as
/// abandoned.
#[must_use = "finish the permit with the outcome, or the use is recorded as abandoned"]
pub struct Permit {
    /// Things the person should be told although the use is allowed (no policy in force,
    /// development mode, an unregistered carrier under `warn`).
    pub notices: Vec<String>,
    settle: Option<Box<dyn Settle>>,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").field("notices", &self.notices).finish_non_exhaustive()
    }
}

impl Permit {
    /// A permit with nothing to settle.
    pub fn allow() -> Self {
        Permit { notices: Vec::new(), settle: None }
    }

    /// A permit whose outcome `settle` records.
    pub fn new(notices: Vec<String>, settle: Box<dyn Settle>) -> Self {
        Permit { notices, settle: Some(settle) }
    }

    /// Records the outcome. On `Err` the use's result must NOT be delivered (fail closed): it is
    /// not on record.
    pub fn finish(mut self, outcome: &Outcome) -> Result<(), Denied> {
        match self.settle.take() {
            Some(mut s) => s.settle(outcome),
            None => Ok(()),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(mut s) = self.settle.take()
            && let Err(e) = s.settle(&Outcome::Failed { kind: "Abandoned".into() })
        {
            log::error!("an abandoned use could not be recorded: {e}");
        }
    }
}

/// Policy and audit hook. The methods do blocking I/O (an fsync'd audit record, a lock file), so
/// the agent calls them on tokio's blocking pool (`gate_io`), never on its async workers; it
/// answers only after the permit is finished, so a use is on record before the client hears of
/// it.
pub trait Gate: Send + Sync {
    /// Whether [`Gate::examine`] should run for this carrier before its next use.
    fn needs_examination(&self, _info: &CarrierInfo) -> bool {
        false
    }

    /// Reads what the policy needs from the carrier itself (its custody tag). Called inside the
    /// carrier's queue, before a use, when [`Gate::needs_examination`] says so.
    fn examine(&self, _carrier: &dyn Carrier) {}

    /// Allows or refuses a use before anything touches the carrier.
    fn authorize(&self, ctx: &UseContext) -> Result<Permit, Denied>;

    /// Records a use that never got a permit (a refusal). An error means even the refusal could
    /// not be recorded; the use stays refused.
    fn record(&self, ctx: &UseContext, outcome: &Outcome) -> Result<(), Denied>;
}

/// Personal mode without an audit log: every use is allowed and logged at `info`. The agent and
/// the CLI use [`crate::policy::gate::CustodyGate`]; this is for embedders and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct PersonalGate;

impl Gate for PersonalGate {
    fn authorize(&self, _ctx: &UseContext) -> Result<Permit, Denied> {
        Ok(Permit::allow())
    }

    fn record(&self, ctx: &UseContext, outcome: &Outcome) -> Result<(), Denied> {
        log_use(ctx, outcome);
        Ok(())
    }
}

/// Logs a use and its outcome at `info` ("use: sign by /usr/bin/x (pid 7) on soft:…: done"):
/// the agent's log line for every gate, next to whatever the gate puts on record.
pub fn log_use(ctx: &UseContext, outcome: &Outcome) {
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
        ctx.certificate.as_ref().map(|c| format!(" cert {}", c.get(..16).unwrap_or(c))).unwrap_or_default()
    );
}
