//! The tamper-evident audit log: one SM3-chained record for every carrier use, every refusal and
//! every helpdesk action, written and synced to disk before the answer goes out.
//!
//! - [`record`]: a record and its line format (`{"hash":…,"record":…}`, SM3 over the body).
//! - [`log`]: appending (durable, shared between processes by `flock`, rotation that keeps the
//!   chain across files, recovery after an interrupted write).
//! - [`verify`]: finds edited, deleted, reordered and truncated records and says where.
//! - [`read`]: reading records back with filters (`ukey audit show`).
//! - [`forward`]: a copy of each record to syslog (RFC 5424 structured data) or journald.
//! - [`paths`]: where the logs live.
//!
//! What the chain protects against, and what not: see `docs/custody.md`. In short, any edit,
//! deletion, reordering or truncation of records is found, except by someone who rewrites the
//! whole chain from the point of change onward; forwarding (a copy of every hash off the
//! machine) and anchors (`ukey audit verify --anchor SEQ:HASH`) catch that too.

pub mod error;
pub mod files;
pub mod forward;
pub mod log;
pub mod paths;
pub mod read;
pub mod record;
pub mod tail;
pub mod time;
pub mod verify;

pub use error::AuditError;
pub use log::{Appended, AuditLog, AuditOptions};
pub use record::{Event, Record};
pub use verify::{Anchor, Report, verify_dir};
