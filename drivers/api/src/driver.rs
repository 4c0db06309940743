//! The `Driver` trait: one carrier family, its enumeration and its hot-plug events.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::carrier::Carrier;
use crate::error::Result;
use crate::identity::{CarrierId, CarrierInfo, CarrierKind};

/// A carrier appeared, went away, or its objects changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum CarrierEvent {
    /// A carrier was inserted (or found at start-up). Drivers that need several commands to
    /// learn who a carrier is (a smart card: SELECT, CHUID) may send this as soon as the device
    /// is seen, under a provisional id, and follow with [`CarrierEvent::Identified`]; a device
    /// that turns out not to be a usable carrier is withdrawn with [`CarrierEvent::Removed`].
    Inserted {
        /// Who it is.
        info: Box<CarrierInfo>,
    },
    /// A carrier was removed.
    Removed {
        /// Its stable id.
        id: CarrierId,
    },
    /// A carrier reported as [`CarrierEvent::Inserted`] under a provisional id is now known:
    /// `info` is who it is, and every later event about it uses `info.id`. Sent so a person sees
    /// a card arrive at once rather than after it has been read (hot-plug latency).
    Identified {
        /// The id the `Inserted` event carried.
        provisional: CarrierId,
        /// Who it is.
        info: Box<CarrierInfo>,
    },
    /// Objects on the carrier changed (key generated, certificate imported, token reset).
    Changed {
        /// Its stable id.
        id: CarrierId,
    },
}

/// Where a driver delivers hot-plug events. Called from the driver's own watcher thread; must
/// return quickly.
pub type EventSink = Arc<dyn Fn(CarrierEvent) + Send + Sync>;

/// Keeps a driver's hot-plug watcher running; dropping it stops the watcher and joins its thread.
pub trait Watch: Send {}

/// A driver's own health, for `ukey modules` and `ukey doctor` (a module that failed to load, a
/// missing pcscd): reported, never fatal to the other drivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverStatus {
    /// What was checked (module path, service, device).
    pub subject: String,
    /// Whether it works.
    pub ok: bool,
    /// What was found, and for a failure what to do about it.
    pub message: String,
}

/// One carrier family.
pub trait Driver: Send + Sync {
    /// Which family.
    fn kind(&self) -> CarrierKind;

    /// The carriers present now. A carrier that fails to open is left out and described in
    /// [`Driver::status`]; it never hides the others.
    fn carriers(&self) -> Result<Vec<Arc<dyn Carrier>>>;

    /// Starts watching for insertions and removals, delivering events to `sink` until the
    /// returned guard is dropped. Carriers present at the start are reported as `Inserted`.
    fn watch(&self, sink: EventSink) -> Result<Box<dyn Watch>>;

    /// Health of the driver's parts (modules, services, devices).
    fn status(&self) -> Vec<DriverStatus>;
}
