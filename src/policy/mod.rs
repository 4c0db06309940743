//! The custody policy: who may use which carrier, enforced on every use by the agent and the CLI.
//!
//! - [`paths`]: where the registry, the policy file, anchors and markers live.
//! - [`settings`]: `policy.toml` (and personal mode when there is none).
//! - [`record`], [`store`]: custody records and the registry on disk.
//! - [`accounts`]: the calling OS account; the helpdesk role.
//! - [`compliance`]: compliant carriers, by the unit's catalog.
//! - [`tag`]: signed custody tags carried on the carrier.
//! - [`inuse`]: the cross-account in-use marker.
//! - [`peer`]: the account behind a loopback TCP connection (WebSocket clients).
//! - [`decide`]: the decision for one use.
//! - [`gate`]: the gate the agent and the CLI put in front of every carrier use.
//! - [`gated`]: carriers behind the gate, for the CLI's direct path.
//!
//! See `docs/custody.md` for the whole design.

pub mod accounts;
pub mod compliance;
pub mod decide;
pub mod gate;
pub mod gated;
pub mod inuse;
pub mod paths;
pub mod peer;
pub mod record;
pub mod settings;
pub mod store;
pub mod tag;
