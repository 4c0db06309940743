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
    /// `drivers = [...]` from the config: only these start (`None`: all).
    only: Option<Vec<String>>,
    /// Every driver name offered to [`Registry::start`], to catch typos in `only`.
    known: Vec<&'static str>,
}

impl Registry {
    /// Starts the drivers the configuration enables, one line per carrier family.
    pub fn from_config(config: &Config) -> Self {
        let mut registry = Registry { only: config.drivers.clone(), ..Registry::default() };
        if config.soft_enabled {
            registry.start("soft", || crate::registry::soft_driver(config));
        }
        registry.start("pkcs11", || Ok(Box::new(pkcs11_driver(config))));
        registry.start("pcsc", || Ok(Box::new(ukey_pcsc::PcscDriver::default())));
        registry.start("hid", || Ok(Box::new(ukey_hid::HidDriver::from_env())));
        registry.check_selection();
        registry
    }

    /// Starts one driver (unless the configuration leaves it out), recording a failure instead
    /// of returning it.
    pub fn start(&mut self, name: &'static str, start: impl FnOnce() -> Result<Box<dyn Driver>, Error>) {
        self.known.push(name);
        if self.only.as_ref().is_some_and(|only| !only.iter().any(|n| n == name)) {
            log::info!("driver {name} not started: the configuration selects {:?}", self.only);
            return;
        }
        match start() {
            Ok(driver) => self.drivers.push((name, driver)),
            Err(e) => {
                log::warn!("driver {name} did not start: {e}");
                self.failed.push(DriverProblem { driver: name.to_string(), message: e.to_string() });
            }
        }
    }

    /// Reports names in the driver selection that no driver has.
    fn check_selection(&mut self) {
        let unknown: Vec<String> =
            self.only.iter().flatten().filter(|n| !self.known.contains(&n.as_str())).cloned().collect();
        for name in unknown {
            self.failed.push(DriverProblem {
                driver: name.clone(),
                message: format!("no driver is called `{name}`; known drivers: {}", self.known.join(", ")),
            });
        }
    }

    /// Adds a driver that is already running (tests and embedders).
    pub fn add(&mut self, name: &'static str, driver: Box<dyn Driver>) {
        self.drivers.push((name, driver));
    }

    /// Lists the carriers of every driver; a failing driver, and every part a driver reports as
    /// unhealthy (a damaged token file, a module that does not load), becomes a problem, not an
    /// error.
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
            // Carriers that failed to open are left out of the list and described here.
            for status in driver.status().into_iter().filter(|s| !s.ok) {
                let message = if status.message.contains(&status.subject) {
                    status.message
                } else {
                    format!("{}: {}", status.subject, status.message)
                };
                if !problems.iter().any(|p| p.driver == *name && p.message == message) {
                    problems.push(DriverProblem { driver: name.to_string(), message });
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
    /// agent keeps its drivers ungated; it gates each use itself. `show_notices`: print each
    /// use's notices (personal mode, development mode) on stderr (human mode only).
    pub fn gated(self, gate: Arc<dyn crate::agent::gate::Gate>, show_notices: bool) -> Self {
        let drivers = self
            .drivers
            .into_iter()
            .map(|(name, d)| {
                let wrapped: Box<dyn Driver> =
                    Box::new(crate::policy::gated::GatedDriver::new(d, Arc::clone(&gate), show_notices));
                (name, wrapped)
            })
            .collect();
        Registry { drivers, ..self }
    }
}

/// True when the configuration starts the driver called `name` (no `drivers` list: all).
pub fn selects(config: &Config, name: &str) -> bool {
    config.drivers.as_ref().is_none_or(|only| only.iter().any(|n| n == name))
}

/// The PKCS#11 driver as the configuration asks for it; shared by the registry, `ukey modules`
/// and `ukey doctor` so all three find the same modules. When ukey's own PC/SC driver runs,
/// OpenSC's p11-kit registration is skipped (the same cards would appear twice).
pub fn pkcs11_driver(config: &Config) -> ukey_pkcs11::Pkcs11Driver {
    let options = ukey_pkcs11::DiscoveryOptions { native_pcsc: selects(config, "pcsc") };
    ukey_pkcs11::Pkcs11Driver::with_options(&config.file.pkcs11, &[], options)
}

/// The built-in software token store in the configured directory.
fn soft_driver(config: &Config) -> Result<Box<dyn Driver>, Error> {
    Ok(Box::new(ukey_soft::SoftDriver::open(&config.soft_dir)))
}
