//! The carriers the agent serves, from every driver the registry configured, kept current by the
//! drivers' hot-plug watchers, each with its own transaction queue.
//!
//! One transaction at a time per carrier: a fair (FIFO) one-permit semaphore with a bound on how
//! many may wait and how long. Other carriers, and clients waiting for them, are not held up. The
//! driver call itself is blocking: it runs under `block_in_place`, which moves the async worker's
//! other tasks to another thread first, so the sockets are always served.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};

use ukey_api::{Carrier, CarrierEvent, CarrierId, CarrierInfo, Driver, Error, ObjectList, Watch};

use crate::agent::background::{BackgroundDriver, DriverReport};

/// How long a cached object list is trusted without a change event (another program may write
/// to a PKCS#11 token without the driver noticing).
const OBJECT_CACHE_TTL: Duration = Duration::from_secs(5);

/// How often a driver without hot-plug support is re-enumerated.
const POLL_INTERVAL: Duration = Duration::from_millis(1000);

/// A change in the set of carriers or on one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierChange {
    /// A carrier appeared.
    Inserted(Box<CarrierInfo>),
    /// A carrier went away.
    Removed(CarrierId),
    /// Objects on a carrier changed.
    Changed(CarrierId),
}

/// One present carrier with its queue.
pub struct CarrierSlot {
    carrier: Arc<dyn Carrier>,
    info: CarrierInfo,
    driver: usize,
    permit: Arc<Semaphore>,
    waiting: AtomicUsize,
    depth: usize,
    timeout: Duration,
    removed: watch::Sender<bool>,
    objects: Mutex<Option<(Instant, Arc<ObjectList>)>>,
}

impl CarrierSlot {
    /// Who the carrier is.
    pub fn info(&self) -> &CarrierInfo {
        &self.info
    }

    /// True once the carrier was removed.
    pub fn is_removed(&self) -> bool {
        *self.removed.borrow()
    }

    /// Resolves when the carrier is removed (for racing a PIN dialog against removal).
    pub async fn removed(&self) {
        let mut rx = self.removed.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Runs one transaction on the carrier, after the ones queued before it.
    pub async fn run<T, F>(&self, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Carrier) -> Result<T, Error> + Send + 'static,
    {
        if self.is_removed() {
            return Err(Error::TokenRemoved);
        }
        let permit = {
            let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
            let _leave = WaitGuard(&self.waiting);
            if ahead >= self.depth {
                return Err(Error::Busy(format!(
                    "{ahead} requests are already waiting for {}",
                    self.info.display_name()
                )));
            }
            match tokio::time::timeout(self.timeout, self.permit.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(Error::TokenRemoved),
                Err(_) => {
                    return Err(Error::Busy(format!(
                        "{} was in use by other requests for {} s",
                        self.info.display_name(),
                        self.timeout.as_secs()
                    )));
                }
            }
        };
        if self.is_removed() {
            return Err(Error::TokenRemoved);
        }
        let carrier = Arc::clone(&self.carrier);
        let work = move || {
            let _permit = permit;
            op(carrier.as_ref())
        };
        let on_worker_pool = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if on_worker_pool {
            // The transaction runs on this thread while tokio hands this worker's other tasks to
            // another thread: no hand-off to the blocking pool and back, which were two thread
            // wake-ups on every signature's path (the largest part of the agent's own latency on
            // a busy machine). A panicking driver is an error, as it was from the blocking pool.
            tokio::task::block_in_place(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)))
                .map_err(|_| Error::Device("the driver failed unexpectedly (it panicked)".into()))?
        } else {
            tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| Error::Device(format!("the driver failed unexpectedly ({e})")))?
        }
    }

    /// The carrier's objects, from a short-lived cache refreshed through the queue.
    pub async fn objects(&self) -> Result<Arc<ObjectList>, Error> {
        if let Ok(cache) = self.objects.lock()
            && let Some((at, list)) = cache.as_ref()
            && at.elapsed() < OBJECT_CACHE_TTL
        {
            return Ok(Arc::clone(list));
        }
        let list = Arc::new(self.run(|c| c.objects()).await?);
        if let Ok(mut cache) = self.objects.lock() {
            *cache = Some((Instant::now(), Arc::clone(&list)));
        }
        Ok(list)
    }

    /// Forgets the cached objects (after a change).
    pub fn invalidate(&self) {
        if let Ok(mut cache) = self.objects.lock() {
            *cache = None;
        }
    }
}

struct WaitGuard<'a>(&'a AtomicUsize);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Every present carrier of every driver.
pub struct Carriers {
    drivers: Vec<Arc<BackgroundDriver>>,
    slots: RwLock<BTreeMap<CarrierId, Arc<CarrierSlot>>>,
    watches: Mutex<Vec<Box<dyn Watch>>>,
    depth: usize,
    timeout: Duration,
    changes: mpsc::UnboundedSender<CarrierChange>,
}

impl Carriers {
    /// Serves the carriers of `drivers`; changes are reported on the returned channel.
    pub fn new(
        drivers: Vec<Arc<BackgroundDriver>>,
        queue_depth: usize,
        queue_timeout: Duration,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<CarrierChange>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let carriers = Arc::new(Carriers {
            drivers,
            slots: RwLock::new(BTreeMap::new()),
            watches: Mutex::new(Vec::new()),
            depth: queue_depth.max(1),
            timeout: queue_timeout,
            changes: tx,
        });
        (carriers, rx)
    }

    /// Enumerates every driver and starts their watchers (or polling, for drivers without one).
    /// A driver that fails is logged and skipped; it never hides the others.
    pub async fn start(self: &Arc<Self>) {
        // A short grace for the drivers to come up, so clients connecting at once see the
        // carriers of every healthy driver; slower ones keep starting in the background.
        let drivers = self.drivers.clone();
        let until = Instant::now() + crate::agent::background::STARTUP_GRACE;
        let _ = tokio::task::spawn_blocking(move || {
            for d in &drivers {
                if !d.wait_started(until) {
                    log::info!("driver {} is still starting; the agent serves the others meanwhile", d.name());
                }
            }
        })
        .await;
        for idx in 0..self.drivers.len() {
            self.rescan(idx).await;
            let (tx, mut rx) = mpsc::unbounded_channel::<CarrierEvent>();
            let sink: ukey_api::EventSink = Arc::new(move |ev| {
                let _ = tx.send(ev);
            });
            let driver = Arc::clone(&self.drivers[idx]);
            match tokio::task::spawn_blocking(move || driver.watch(sink)).await {
                Ok(Ok(guard)) => {
                    if let Ok(mut w) = self.watches.lock() {
                        w.push(guard);
                    }
                    let me = Arc::downgrade(self);
                    tokio::spawn(async move {
                        while let Some(ev) = rx.recv().await {
                            let Some(me) = me.upgrade() else { break };
                            me.on_driver_event(idx, ev).await;
                        }
                    });
                }
                Ok(Err(e)) => {
                    log::info!("{} driver has no hot-plug watcher ({e}); polling it", self.drivers[idx].kind());
                    let me = Arc::downgrade(self);
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(POLL_INTERVAL).await;
                            let Some(me) = me.upgrade() else { break };
                            me.rescan(idx).await;
                        }
                    });
                }
                Err(e) => log::error!("starting the {} watcher failed: {e}", self.drivers[idx].kind()),
            }
        }
    }

    /// Where each driver is in starting, with its problems (asks running drivers for their
    /// health, off the async workers).
    pub async fn driver_reports(&self) -> Vec<DriverReport> {
        let drivers = self.drivers.clone();
        tokio::task::spawn_blocking(move || drivers.iter().map(|d| d.report()).collect()).await.unwrap_or_default()
    }

    /// Stops the watchers.
    pub fn stop(&self) {
        if let Ok(mut w) = self.watches.lock() {
            w.clear();
        }
    }

    /// Present carriers, in id order.
    pub fn list(&self) -> Vec<Arc<CarrierSlot>> {
        self.slots.read().map(|s| s.values().cloned().collect()).unwrap_or_default()
    }

    /// One carrier by id.
    pub fn get(&self, id: &CarrierId) -> Result<Arc<CarrierSlot>, Error> {
        self.slots.read().ok().and_then(|s| s.get(id).cloned()).ok_or_else(|| {
            Error::NotFound(format!("no carrier `{id}` is present; `tokens.list` shows the present ones"))
        })
    }

    /// Tells listeners a carrier's objects changed (after an enrolment through the agent).
    pub fn note_changed(&self, id: &CarrierId) {
        if let Ok(slot) = self.get(id) {
            slot.invalidate();
        }
        let _ = self.changes.send(CarrierChange::Changed(id.clone()));
    }

    async fn on_driver_event(self: &Arc<Self>, idx: usize, ev: CarrierEvent) {
        match ev {
            CarrierEvent::Inserted { info } | CarrierEvent::Identified { info, .. } => {
                if self.get(&info.id).is_err() {
                    self.rescan(idx).await;
                }
            }
            CarrierEvent::Removed { id } => self.remove(&id),
            CarrierEvent::Changed { id } => self.note_changed(&id),
        }
    }

    /// Re-enumerates one driver, adding new carriers and removing vanished ones.
    async fn rescan(self: &Arc<Self>, idx: usize) {
        let driver = Arc::clone(&self.drivers[idx]);
        let found = match tokio::task::spawn_blocking(move || driver.carriers()).await {
            Ok(Ok(list)) => list,
            Ok(Err(e)) => {
                log::warn!("listing {} carriers failed: {e}", self.drivers[idx].kind());
                return;
            }
            Err(e) => {
                log::error!("listing {} carriers failed unexpectedly: {e}", self.drivers[idx].kind());
                return;
            }
        };
        let mut inserted = Vec::new();
        let mut vanished = Vec::new();
        if let Ok(mut slots) = self.slots.write() {
            let ids: Vec<CarrierId> = found.iter().map(|c| c.info().id.clone()).collect();
            for (id, slot) in slots.iter() {
                if slot.driver == idx && !ids.contains(id) {
                    vanished.push(id.clone());
                }
            }
            for carrier in found {
                let info = carrier.info().clone();
                if slots.contains_key(&info.id) {
                    continue;
                }
                let (removed, _) = watch::channel(false);
                slots.insert(
                    info.id.clone(),
                    Arc::new(CarrierSlot {
                        carrier,
                        info: info.clone(),
                        driver: idx,
                        permit: Arc::new(Semaphore::new(1)),
                        waiting: AtomicUsize::new(0),
                        depth: self.depth,
                        timeout: self.timeout,
                        removed,
                        objects: Mutex::new(None),
                    }),
                );
                inserted.push(info);
            }
        }
        for id in vanished {
            self.remove(&id);
        }
        for info in inserted {
            log::info!("carrier present: {} [{}]", info.display_name(), info.id);
            let _ = self.changes.send(CarrierChange::Inserted(Box::new(info)));
        }
    }

    fn remove(&self, id: &CarrierId) {
        let slot = self.slots.write().ok().and_then(|mut s| s.remove(id));
        if let Some(slot) = slot {
            slot.removed.send_replace(true);
            slot.invalidate();
            log::info!("carrier removed: {} [{id}]", slot.info.display_name());
            let _ = self.changes.send(CarrierChange::Removed(id.clone()));
        }
    }
}
