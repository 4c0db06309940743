//! What every command gets: the configuration, the drivers, the output format and the PIN
//! sources. Drivers are started on first use, so `ukey --help` or `ukey verify` (which needs no
//! carrier) never touches a device.

use std::sync::OnceLock;

use ukey_api::PinRole;

use crate::cli::output::Output;
use crate::cli::pin_input::PinInput;
use crate::config::Config;
use crate::registry::{Inventory, Registry};

/// Per-invocation state shared by the commands.
pub struct Context {
    /// Paths and the config file.
    pub config: Config,
    /// Table or JSON.
    pub out: Output,
    /// Where PINs come from.
    pub pins: PinInput,
    registry: OnceLock<Registry>,
}

impl Context {
    /// Builds the context; config warnings are printed once here.
    pub fn new(config: Config, out: Output, pins: PinInput) -> Self {
        for warning in &config.warnings {
            out.warn(warning);
        }
        Context { config, out, pins, registry: OnceLock::new() }
    }

    /// The drivers, started on first use: the running agent's carriers when an agent runs (so
    /// its custody policy and audit apply; `UKEY_NO_AGENT=1` opts out), else the local drivers
    /// behind this process's own custody gate (issue 6): the direct path sidesteps nothing.
    ///
    /// The gate (policy, unit catalog, custody registry) is read on its own thread while the
    /// drivers start: loading a PKCS#11 module is most of a one-shot command's time, and the two
    /// share nothing. The gate is in place before any carrier is handed out, as before.
    pub fn registry(&self) -> &Registry {
        self.registry.get_or_init(|| {
            crate::agent::remote::registry_through_agent(self.config.file.agent.runtime_dir.as_deref()).unwrap_or_else(
                || {
                    std::thread::scope(|scope| {
                        let gate = std::thread::Builder::new()
                            .name("ukey-gate".into())
                            .spawn_scoped(scope, crate::policy::gate::cli_gate);
                        let registry = Registry::from_config(&self.config);
                        let gate = match gate.map(|g| g.join()) {
                            Ok(Ok(gate)) => gate,
                            // No thread (or it panicked): read the gate here instead.
                            _ => crate::policy::gate::cli_gate(),
                        };
                        registry.gated(gate, !self.out.json)
                    })
                },
            )
        })
    }

    /// The carriers present now. Drivers that failed are reported as warnings in human mode
    /// (commands that list carriers also put them in their JSON).
    pub fn inventory(&self) -> Inventory {
        let inventory = self.registry().inventory();
        for p in &inventory.problems {
            log::warn!("driver {} is unavailable: {}", p.driver, p.message);
        }
        inventory
    }

    /// The current PIN of `role` for a carrier.
    pub fn current_pin(
        &self,
        role: PinRole,
        carrier: &dyn ukey_api::Carrier,
    ) -> crate::cli::error::CliResult<ukey_api::Pin> {
        self.pins.current(role, &token_name(carrier))
    }
}

/// How a carrier is named in prompts: its label and serial.
pub fn token_name(carrier: &dyn ukey_api::Carrier) -> String {
    let info = carrier.info();
    crate::cli::output::sanitize(&format!("token \"{}\" (serial {})", info.label, info.serial))
}
