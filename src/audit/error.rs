//! Why the audit log could not be written or read.
//!
//! A write failure refuses the use that needed the record (fail closed), so the message is for
//! the person refused and for whoever fixes the machine: what failed, where, and what to do.

use std::path::PathBuf;

/// An audit log failure.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file system refused (full disk, read-only directory, permissions).
    #[error(
        "the audit log cannot be written ({action} {}: {source}); every use must be on record, so this one was refused — {hint}",
        path.display()
    )]
    Write {
        /// What ukey was doing.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
        /// What to do about it.
        hint: String,
    },
    /// The log could not be read.
    #[error("cannot read the audit log {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The end of the log is damaged in a way a writer cannot continue from.
    #[error(
        "the audit log {} ends in damaged records ({reason}); run `ukey audit verify` and have the damage examined before new uses are recorded",
        path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl AuditError {
    /// A write failure with a hint that fits the OS error.
    pub fn write(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        let hint = match source.raw_os_error() {
            Some(28) | Some(122) => "free disk space (or raise the quota) where the audit log lives".to_string(),
            Some(30) => "the file system is mounted read-only; remount it read-write or point UKEY_AUDIT_DIR elsewhere"
                .to_string(),
            Some(13) | Some(1) => format!(
                "make {} writable by this account, or point UKEY_AUDIT_DIR at a directory it can write",
                path.parent().unwrap_or(&path).display()
            ),
            _ => "fix the problem above, then try again".to_string(),
        };
        AuditError::Write { action, path, source, hint }
    }
}
