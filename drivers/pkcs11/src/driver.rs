//! The PKCS#11 [`Driver`]: every discovered module, its tokens as carriers, and its health.
//!
//! Modules are loaded when the driver is made; one that fails is reported by [`Driver::status`]
//! and [`Pkcs11Driver::modules`] and changes nothing for the others. Each token gets one shared
//! [`Token`] for the life of the driver, so every carrier object handed out for it shares one
//! session and one login state.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{debug, warn};
use serde::Serialize;
use ukey_api::{Carrier, CarrierId, CarrierInfo, CarrierKind, Driver, DriverStatus, EventSink, Result, Watch};

use crate::config::Pkcs11Config;
use crate::discovery::{self, CatalogModule, Discovery, DiscoveryOptions, ModuleSpec, SearchPaths};
use crate::module::{self, LibraryInfo, Module};
use crate::session::{Token, TokenIdentity, TokenSettings};
use crate::token::{self, Pkcs11Carrier};
use crate::watch;

/// What `ukey modules` shows for one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleReport {
    /// Short name.
    pub name: String,
    /// Path as named by its source.
    pub path: PathBuf,
    /// Who named it (config, p11-kit file, catalog entry, environment).
    pub source: String,
    /// It loaded and initialised.
    pub loaded: bool,
    /// Left out on purpose (the message says why); not a failure.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// What was found, or what went wrong and what to do.
    pub message: String,
    /// The library's own description, when loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library: Option<LibraryInfo>,
    /// Tokens present now.
    pub tokens: usize,
    /// The SM2 profile in use, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sm2_profile: Option<String>,
}

pub(crate) struct LoadedModule {
    pub module: Arc<Module>,
    pub spec: ModuleSpec,
    pub settings: TokenSettings,
}

pub(crate) struct Inner {
    // Tokens before modules: tokens hold sessions that must close before C_Finalize.
    tokens: Mutex<HashMap<CarrierId, Arc<Token>>>,
    pub modules: Vec<LoadedModule>,
    failed: Vec<(ModuleSpec, String)>,
    skipped: Vec<(ModuleSpec, String)>,
    notes: Vec<DriverStatus>,
    runtime: Mutex<Vec<DriverStatus>>,
    pub poll: Duration,
}

/// The PKCS#11 driver.
#[derive(Clone)]
pub struct Pkcs11Driver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pkcs11Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Driver").field("modules", &self.inner.modules.len()).finish_non_exhaustive()
    }
}

impl Pkcs11Driver {
    /// Discovers modules from the configuration, p11-kit and `UKEY_PKCS11_MODULES`, and loads
    /// them.
    pub fn new(config: &Pkcs11Config) -> Self {
        Self::with_catalog(config, &[])
    }

    /// As [`Pkcs11Driver::new`], plus the modules the carrier catalog names.
    pub fn with_catalog(config: &Pkcs11Config, catalog: &[CatalogModule]) -> Self {
        Self::with_options(config, catalog, DiscoveryOptions::default())
    }

    /// As [`Pkcs11Driver::with_catalog`], knowing what else ukey runs (its own PC/SC driver
    /// makes OpenSC's p11-kit registration redundant).
    pub fn with_options(config: &Pkcs11Config, catalog: &[CatalogModule], options: DiscoveryOptions) -> Self {
        let env = std::env::var(discovery::MODULES_ENV).ok();
        let found = discovery::discover_with(config, catalog, &SearchPaths::system(), env.as_deref(), options);
        Self::load(found, Duration::from_millis(config.poll_interval_ms.max(10)), config.init_timeout())
    }

    /// Loads exactly the modules of a discovery result. Every module starts on its own worker
    /// thread at once; each has `init_timeout` to answer, and one that does not is reported and
    /// never called again, while the others are used as usual.
    pub fn load(found: Discovery, poll: Duration, init_timeout: Duration) -> Self {
        let mut modules = Vec::new();
        let mut failed = Vec::new();
        let mut notes = found.notes;
        let skipped = found.skipped;
        let started: Vec<_> = found.modules.into_iter().map(|spec| (module::start(&spec.path), spec)).collect();
        let deadline = std::time::Instant::now() + init_timeout;
        for (pending, spec) in started {
            let sm2 = match spec.options.sm2.as_ref().map(|c| c.resolve()).transpose() {
                Ok(p) => p,
                Err(e) => {
                    notes.push(DriverStatus {
                        subject: spec.path.display().to_string(),
                        ok: false,
                        message: format!("SM2 settings ignored: {e}"),
                    });
                    None
                }
            };
            match pending.wait(deadline, init_timeout) {
                Ok(module) => {
                    let settings = TokenSettings {
                        keep_login: spec.options.keep_login,
                        sm2,
                        module_path: spec.path.display().to_string(),
                        module_name: spec.name.clone(),
                    };
                    modules.push(LoadedModule { module, spec, settings });
                }
                Err(e) => {
                    warn!("{e}");
                    failed.push((spec, e.to_string()));
                }
            }
        }
        Pkcs11Driver {
            inner: Arc::new(Inner {
                tokens: Mutex::new(HashMap::new()),
                modules,
                failed,
                skipped,
                notes,
                runtime: Mutex::new(Vec::new()),
                poll,
            }),
        }
    }

    /// Every module found, loaded or not, for `ukey modules`.
    pub fn modules(&self) -> Vec<ModuleReport> {
        self.reports(true)
    }

    /// The module reports; `count_tokens` lists each loaded module's slots for the token count
    /// (`ukey modules`), which [`Driver::status`] — asked on every inventory — does not need.
    fn reports(&self, count_tokens: bool) -> Vec<ModuleReport> {
        let mut out = Vec::new();
        for m in &self.inner.modules {
            let info = m.module.info();
            let loaded = format!(
                "loaded: {} {} by {} (Cryptoki {})",
                info.description, info.version, info.manufacturer, info.cryptoki_version
            );
            let (tokens, message) = if count_tokens {
                let tokens = m.module.ctx().get_slots_with_token().map(|s| s.len()).unwrap_or(0);
                (tokens, format!("{loaded}; {tokens} token(s) present"))
            } else {
                (0, loaded)
            };
            out.push(ModuleReport {
                name: m.spec.name.clone(),
                path: m.spec.path.clone(),
                source: m.spec.source.to_string(),
                loaded: true,
                skipped: false,
                message,
                library: Some(info.clone()),
                tokens,
                sm2_profile: m.settings.sm2.as_ref().map(|p| p.name.clone()),
            });
        }
        for (spec, message) in &self.inner.failed {
            out.push(ModuleReport {
                name: spec.name.clone(),
                path: spec.path.clone(),
                source: spec.source.to_string(),
                loaded: false,
                skipped: false,
                message: message.clone(),
                library: None,
                tokens: 0,
                sm2_profile: None,
            });
        }
        for (spec, reason) in &self.inner.skipped {
            out.push(ModuleReport {
                name: spec.name.clone(),
                path: spec.path.clone(),
                source: spec.source.to_string(),
                loaded: false,
                skipped: true,
                message: reason.clone(),
                library: None,
                tokens: 0,
                sm2_profile: None,
            });
        }
        out
    }

    /// Registrations discovery skipped and module settings that were ignored (`ukey modules`).
    pub fn notes(&self) -> &[DriverStatus] {
        &self.inner.notes
    }

    /// The carriers present now, as the concrete type (benchmarks and tests use the token).
    pub fn pkcs11_carriers(&self) -> Result<Vec<Arc<Pkcs11Carrier>>> {
        let (present, problems) = self.inner.present();
        *self.inner.runtime.lock().unwrap_or_else(|p| p.into_inner()) = problems;
        Ok(present.into_iter().map(|(token, info)| Arc::new(Pkcs11Carrier::new(token, info))).collect())
    }
}

impl Inner {
    /// Enumerates every module's tokens, reusing each token's shared state.
    pub fn present(&self) -> (Vec<(Arc<Token>, CarrierInfo)>, Vec<DriverStatus>) {
        let mut present = Vec::new();
        let mut problems = Vec::new();
        for m in &self.modules {
            let ctx = m.module.ctx();
            let slots = match m.module.slots_with_token() {
                Ok(s) => s,
                Err(e) => {
                    problems.push(DriverStatus {
                        subject: m.spec.path.display().to_string(),
                        ok: false,
                        message: format!("cannot list slots: {}", crate::errors::code_text(&e)),
                    });
                    continue;
                }
            };
            for slot in slots {
                let info = match ctx.get_token_info(slot) {
                    Ok(i) => i,
                    Err(e) => {
                        debug!("{} slot {}: {e}", m.spec.name, slot.id());
                        problems.push(DriverStatus {
                            subject: format!("{} slot {}", m.spec.path.display(), slot.id()),
                            ok: false,
                            message: format!("the token in this slot cannot be read: {}", crate::errors::code_text(&e)),
                        });
                        continue;
                    }
                };
                let carrier = token::carrier_info(&m.settings, slot, &info);
                let token = {
                    let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
                    tokens
                        .entry(carrier.id.clone())
                        .or_insert_with(|| {
                            Arc::new(Token::new(m.module.clone(), slot, TokenIdentity::of(&info), m.settings.clone()))
                        })
                        .clone()
                };
                present.push((token, carrier));
            }
        }
        (present, problems)
    }
}

impl Driver for Pkcs11Driver {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Pkcs11
    }

    fn carriers(&self) -> Result<Vec<Arc<dyn Carrier>>> {
        Ok(self.pkcs11_carriers()?.into_iter().map(|c| c as Arc<dyn Carrier>).collect())
    }

    fn watch(&self, sink: EventSink) -> Result<Box<dyn Watch>> {
        Ok(Box::new(watch::start(self.inner.clone(), sink)?))
    }

    fn status(&self) -> Vec<DriverStatus> {
        let mut out: Vec<DriverStatus> = self
            .reports(false)
            .into_iter()
            .map(|r| DriverStatus {
                subject: r.path.display().to_string(),
                ok: r.loaded || r.skipped,
                message: r.message,
            })
            .collect();
        out.extend(self.inner.notes.iter().cloned());
        out.extend(self.inner.runtime.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned());
        out
    }
}
