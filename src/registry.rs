//! The carrier registry: starts every driver the configuration asks for and gathers their
//! carriers into one list.
//!
//! A driver that fails to start (a PKCS#11 module that does not load, no pcscd) is recorded as a
//! [`DriverProblem`] and skipped: it never hides the carriers of the other drivers. The same
//! holds for a driver whose enumeration fails later.
//!
//! Adding a carrier family is one line in [`Registry::from_config`].

use std::sync::Arc;

use ukey_api::{Carrier, Driver, DriverStatus, Error};

use crate::config::Config;

/// A driver that did not start or could not list its carriers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DriverProblem {
    /// The driver's name (`soft`, `pkcs11`, ...).
    pub driver: String,
    /// What went wrong and what to do, as the driver said it.
    pub message: String,
}

/// The carriers present right now, plus the drivers that could not contribute.
pub struct Inventory {
    /// Every carrier, in driver order then the driver's own order.
    pub carriers: Vec<Arc<dyn Carrier>>,
    /// Drivers that failed; shown as warnings and in `ukey tokens --json`.
    pub problems: Vec<DriverProblem>,
}

/// Every started driver, by name.
#[derive(Default)]
pub struct Registry {
    drivers: Vec<(&'static str, Box<dyn Driver>)>,
    failed: Vec<DriverProblem>,
}

impl Registry {
    /// Starts the drivers the configuration enables, one line per carrier family.
    pub fn from_config(config: &Config) -> Self {
        let mut registry = Registry::default();
        if config.soft_enabled {
            registry.start("soft", || crate::registry::soft_driver(config));
        }
        registry.start("pcsc", || Ok(Box::new(ukey_pcsc::PcscDriver::default())));
        registry
    }

    /// Starts one driver, recording a failure instead of returning it.
    pub fn start(&mut self, name: &'static str, start: impl FnOnce() -> Result<Box<dyn Driver>, Error>) {
        match start() {
            Ok(driver) => self.drivers.push((name, driver)),
            Err(e) => {
                log::warn!("driver {name} did not start: {e}");
                self.failed.push(DriverProblem { driver: name.to_string(), message: e.to_string() });
            }
        }
    }

    /// Adds a driver that is already running (tests and embedders).
    pub fn add(&mut self, name: &'static str, driver: Box<dyn Driver>) {
        self.drivers.push((name, driver));
    }

    /// Lists the carriers of every driver; a failing driver becomes a problem, not an error.
    pub fn inventory(&self) -> Inventory {
        let mut carriers = Vec::new();
        let mut problems = self.failed.clone();
        for (name, driver) in &self.drivers {
            match driver.carriers() {
                Ok(found) => carriers.extend(found),
                Err(e) => {
                    log::warn!("driver {name} could not list its carriers: {e}");
                    problems.push(DriverProblem { driver: name.to_string(), message: e.to_string() });
                }
            }
        }
        Inventory { carriers, problems }
    }

    /// Health of every driver's parts, for `ukey doctor`-style reports.
    pub fn status(&self) -> Vec<(&'static str, DriverStatus)> {
        let mut all: Vec<(&'static str, DriverStatus)> = Vec::new();
        for (name, driver) in &self.drivers {
            all.extend(driver.status().into_iter().map(|s| (*name, s)));
        }
        all
    }

    /// The running drivers, by name.
    pub fn drivers(&self) -> impl Iterator<Item = (&'static str, &dyn Driver)> {
        self.drivers.iter().map(|(n, d)| (*n, d.as_ref()))
    }

    /// Hands the running drivers over to a long-lived owner (the agent shares them between its
    /// tasks, so it needs them reference-counted).
    pub fn into_drivers(self) -> Vec<Arc<dyn Driver>> {
        self.drivers.into_iter().map(|(_, d)| Arc::from(d)).collect()
    }

    /// Drivers that did not start.
    pub fn failed(&self) -> &[DriverProblem] {
        &self.failed
    }

    /// Puts every driver behind the custody gate: the CLI's direct carrier path (issue 6). The
    /// agent keeps its drivers ungated; it gates each use itself.
    pub fn gated(self, gate: Arc<dyn crate::agent::gate::Gate>) -> Self {
        let drivers = self
            .drivers
            .into_iter()
            .map(|(name, d)| {
                let wrapped: Box<dyn Driver> = Box::new(crate::policy::gated::GatedDriver::new(d, Arc::clone(&gate)));
                (name, wrapped)
            })
            .collect();
        Registry { drivers, failed: self.failed }
    }
}

/// The built-in software token store in the configured directory.
fn soft_driver(config: &Config) -> Result<Box<dyn Driver>, Error> {
    Ok(Box::new(ukey_soft::SoftDriver::open(&config.soft_dir)))
}
