//! Drivers started in the background, so the agent answers at once however slow a driver is.
//!
//! A driver's start can take seconds: the PKCS#11 driver waits up to `[pkcs11] init_timeout_ms`
//! for a vendor module that never answers `C_Initialize`. The agent must not make a `tokens.list`
//! or `agent.status` wait for that. Each driver starts on its own thread; until it is up it has no
//! carriers and reports itself as starting, and a driver whose start failed reports why. When it
//! comes up, its hot-plug watcher starts and announces its carriers like any insertion.
//!
//! The agent gives its drivers a short grace ([`STARTUP_GRACE`]) before it listens, so a client
//! connecting at once sees the carriers of every healthy driver; only a driver slower than that
//! is still starting when the first request arrives.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use ukey_api::{Carrier, CarrierEvent, CarrierKind, Driver, DriverStatus, Error, EventSink, Result, Watch};

/// How long the agent waits for its drivers before it listens (healthy drivers start in
/// milliseconds; a PKCS#11 module that never answers takes `[pkcs11] init_timeout_ms`).
pub const STARTUP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Where a driver is in starting.
#[derive(Clone)]
enum State {
    Starting,
    Up(Arc<dyn Driver>),
    Failed(String),
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One driver as the agent sees it: starting, up, or failed to start.
pub struct BackgroundDriver {
    name: &'static str,
    kind: CarrierKind,
    since: Instant,
    shared: Arc<Shared>,
}

/// A driver's start-up state for `tokens.list` and `agent.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverReport {
    /// The driver's name (`soft`, `pkcs11`, `pcsc`, `hid`).
    pub driver: String,
    /// `starting`, `up` or `failed`.
    pub state: &'static str,
    /// Parts of the driver that do not work (a module that missed its deadline), or why it did
    /// not start, or how long it has been starting.
    pub problems: Vec<String>,
}

impl BackgroundDriver {
    /// Starts `start` on its own thread; the driver is `starting` until it returns.
    pub fn spawn(
        name: &'static str,
        kind: CarrierKind,
        start: impl FnOnce() -> Result<Box<dyn Driver>> + Send + 'static,
    ) -> Arc<Self> {
        let shared = Arc::new(Shared { state: Mutex::new(State::Starting), changed: Condvar::new() });
        let driver = Arc::new(BackgroundDriver { name, kind, since: Instant::now(), shared: Arc::clone(&shared) });
        let spawned = std::thread::Builder::new().name(format!("ukey-start-{name}")).spawn(move || {
            let state = match start() {
                Ok(d) => {
                    log::info!("driver {name} is up");
                    State::Up(Arc::from(d))
                }
                Err(e) => {
                    log::warn!("driver {name} did not start: {e}");
                    State::Failed(e.to_string())
                }
            };
            *shared.lock() = state;
            shared.changed.notify_all();
        });
        if let Err(e) = spawned {
            *driver.shared.lock() = State::Failed(format!("the agent could not start a thread for it: {e}"));
        }
        driver
    }

    /// A driver that is already up (tests and embedders).
    pub fn ready(name: &'static str, driver: Arc<dyn Driver>) -> Arc<Self> {
        let kind = driver.kind();
        let shared = Arc::new(Shared { state: Mutex::new(State::Up(driver)), changed: Condvar::new() });
        Arc::new(BackgroundDriver { name, kind, since: Instant::now(), shared })
    }

    /// Waits until the driver is up or failed, or `until` passes; true when it is no longer
    /// starting.
    pub fn wait_started(&self, until: Instant) -> bool {
        let mut state = self.shared.lock();
        loop {
            if !matches!(*state, State::Starting) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.shared.changed.wait_timeout(state, left).map(|(s, _)| s).unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// The driver's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn state(&self) -> State {
        self.shared.lock().clone()
    }

    /// Where the driver is now, with its problems. Asks a running driver for its health, so call
    /// it off the async workers.
    pub fn report(&self) -> DriverReport {
        let (state, problems) = match self.state() {
            State::Starting => (
                "starting",
                vec![format!(
                    "still starting after {:.1} s; its carriers are listed once it is up",
                    self.since.elapsed().as_secs_f64()
                )],
            ),
            State::Up(d) => (
                "up",
                d.status()
                    .into_iter()
                    .filter(|s| !s.ok)
                    .map(|s| {
                        if s.message.contains(&s.subject) { s.message } else { format!("{}: {}", s.subject, s.message) }
                    })
                    .collect(),
            ),
            State::Failed(why) => ("failed", vec![why]),
        };
        DriverReport { driver: self.name.to_string(), state, problems }
    }
}

impl Driver for BackgroundDriver {
    fn kind(&self) -> CarrierKind {
        self.kind
    }

    fn carriers(&self) -> Result<Vec<Arc<dyn Carrier>>> {
        match self.state() {
            State::Up(d) => d.carriers(),
            State::Starting | State::Failed(_) => Ok(Vec::new()),
        }
    }

    fn watch(&self, sink: EventSink) -> Result<Box<dyn Watch>> {
        if let State::Up(d) = self.state() {
            return d.watch(sink);
        }
        // Not up yet: wait for it on a thread, then start its watcher, which reports the
        // carriers present then as insertions.
        let guard = Arc::new(WatchGuard { inner: Mutex::new(None), stopped: Mutex::new(false) });
        let shared = Arc::clone(&self.shared);
        let waiting = Arc::clone(&guard);
        let name = self.name;
        std::thread::Builder::new()
            .name(format!("ukey-wait-{name}"))
            .spawn(move || {
                let driver = {
                    let mut state = shared.lock();
                    loop {
                        if *waiting.stopped.lock().unwrap_or_else(|p| p.into_inner()) {
                            return;
                        }
                        match &*state {
                            State::Starting => state = shared.changed.wait(state).unwrap_or_else(|p| p.into_inner()),
                            State::Up(d) => break Arc::clone(d),
                            State::Failed(_) => return,
                        }
                    }
                };
                match driver.watch(sink.clone()) {
                    Ok(inner) => {
                        let stopped = waiting.stopped.lock().unwrap_or_else(|p| p.into_inner());
                        if !*stopped {
                            *waiting.inner.lock().unwrap_or_else(|p| p.into_inner()) = Some(inner);
                        }
                    }
                    Err(e) => {
                        // No hot-plug for this driver: announce what is present once.
                        log::info!("driver {name} has no hot-plug watcher ({e}); listing its carriers once");
                        for carrier in driver.carriers().unwrap_or_default() {
                            sink(CarrierEvent::Inserted { info: Box::new(carrier.info().clone()) });
                        }
                    }
                }
            })
            .map_err(|e| Error::Device(format!("starting the {name} watcher: {e}")))?;
        Ok(Box::new(StopOnDrop { guard, shared: Arc::clone(&self.shared) }))
    }

    fn status(&self) -> Vec<DriverStatus> {
        match self.state() {
            State::Up(d) => d.status(),
            State::Starting | State::Failed(_) => self
                .report()
                .problems
                .into_iter()
                .map(|message| DriverStatus { subject: format!("{} driver", self.name), ok: false, message })
                .collect(),
        }
    }
}

struct WatchGuard {
    inner: Mutex<Option<Box<dyn Watch>>>,
    stopped: Mutex<bool>,
}

/// Stops the waiting thread, or the driver's watcher once it runs.
struct StopOnDrop {
    guard: Arc<WatchGuard>,
    shared: Arc<Shared>,
}

impl Watch for StopOnDrop {}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        *self.guard.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        // Wake the waiting thread (it holds the state lock while it waits).
        let _state = self.shared.lock();
        self.shared.changed.notify_all();
        drop(_state);
        self.guard.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
