//! Errors of the test harness, each saying what to install or check.

use std::time::Duration;

/// Why the harness could not set up or tear down a card.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// pcscd is not installed.
    #[error(
        "pcscd is not installed: run `apt-get install pcscd vsmartcard-vpcd` (scripts/apt-packages.txt lists them)"
    )]
    PcscdMissing,
    /// pcscd did not come up in time.
    #[error("pcscd did not answer on {socket} within {timeout:?}; see {log} (is vsmartcard-vpcd installed?)")]
    PcscdNotReady {
        /// The socket path waited for.
        socket: String,
        /// How long the harness waited.
        timeout: Duration,
        /// Where pcscd's output went.
        log: String,
    },
    /// A lock could not be taken before the deadline.
    #[error("could not take the test lock {path} within {timeout:?}: another test holds it too long")]
    LockTimeout {
        /// The lock file.
        path: String,
        /// How long the harness waited.
        timeout: Duration,
    },
    /// The card did not appear in or disappear from the reader in time.
    #[error("the card did not become {expected} in reader '{reader}' within {timeout:?}")]
    CardTimeout {
        /// The reader.
        reader: String,
        /// "present" or "absent".
        expected: &'static str,
        /// How long the harness waited.
        timeout: Duration,
    },
    /// pcscd does not know the vpcd reader.
    #[error("pcscd has no reader '{0}': install vsmartcard-vpcd and restart pcscd")]
    ReaderMissing(String),
    /// Connecting to vpcd failed.
    #[error("cannot connect to vpcd on port {port}: {source} (is pcscd running with vsmartcard-vpcd?)")]
    Vpcd {
        /// The vpcd port.
        port: u16,
        /// The socket error.
        source: std::io::Error,
    },
    /// The operation needs the exclusive pcscd lock.
    #[error("restarting pcscd needs a lease taken with ReaderLease::acquire_any_exclusive")]
    NotExclusive,
    /// The harness refuses to stop a pcscd it did not start.
    #[error("the running pcscd (pid {0}) was not started by the test harness; refusing to stop it")]
    ForeignPcscd(i32),
    /// A PC/SC call failed.
    #[error("PC/SC: {0}")]
    Pcsc(#[from] pcsc::Error),
    /// A file or process operation failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}
