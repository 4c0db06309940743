//! The per-user local agent: browser pages and desktop programs sign and authenticate with the
//! holder's carriers through it, and it — not the page — talks to the carrier and asks for the
//! PIN.
//!
//! One service layer ([`service`]), two transports: a Unix socket for local programs ([`unix`],
//! SO_PEERCRED-checked) and a loopback WebSocket for web pages ([`websocket`], Host- and
//! Origin-checked, pages paired by the holder). Every carrier use passes the [`gate`] (custody
//! policy and audit plug in there). [`run`] starts it all and stops cleanly on SIGTERM/SIGINT.

mod admin;
pub mod auth;
pub mod background;
pub mod carriers;
pub mod client;
pub mod consent;
mod credentials;
mod enroll;
pub mod error;
pub mod events;
mod forward;
pub mod gate;
mod gate_io;
pub mod http;
pub mod instance;
mod listing;
pub mod methods;
mod operations;
pub mod origins;
mod pairing;
pub mod pincache;
pub mod pinentry;
pub mod ports;
pub mod remote;
pub mod rpc;
pub mod service;
pub mod settings;
mod signing;
pub mod unix;
pub mod views;
pub mod webguard;
pub mod websocket;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use ukey_api::Error;

use crate::agent::carriers::{CarrierChange, Carriers};
use crate::agent::consent::Consent;
use crate::agent::events::AgentEvent;
use crate::agent::gate::Gate;
use crate::agent::instance::{AgentStatus, InstanceLock};
use crate::agent::origins::OriginStore;
use crate::agent::pincache::PinCache;
use crate::agent::pinentry::Pinentry;
use crate::agent::service::{Endpoints, Service};
use crate::agent::settings::AgentSettings;
use crate::agent::views::TokenView;
use crate::agent::webguard::OriginRules;

/// What the agent is started with.
pub struct AgentOptions {
    /// Settings.
    pub settings: AgentSettings,
    /// The carrier drivers to serve, starting in the background (from the registry).
    pub drivers: Vec<Arc<background::BackgroundDriver>>,
    /// The policy and audit gate.
    pub gate: Arc<dyn Gate>,
}

/// Runs the agent until SIGTERM, SIGINT or `agent.shutdown`. `on_ready` is called once both
/// transports listen and the status file is written (used by `--detach` and tests).
pub async fn run(options: AgentOptions, on_ready: impl FnOnce(&AgentStatus)) -> Result<(), Error> {
    let AgentOptions { settings, drivers, gate } = options;
    // Handlers first: a SIGTERM that arrives while the agent starts (or right after it announced
    // itself) must stop it cleanly, not kill it with the default action.
    let mut stop_signals = StopSignals::install()?;
    raise_fd_limit(&settings);
    let dir = instance::runtime_dir(settings.runtime_dir.as_deref())?;
    let lock = InstanceLock::acquire(&dir)?;
    let socket_path = instance::socket_path(&dir);
    let (unix_listener, activated) = unix_listener(&lock, &socket_path)?;

    let (ws, port) = if settings.websocket {
        let bound =
            ports::bind_in_range(settings.port, settings.port_range, rustix::process::getuid().as_raw()).await?;
        let (listeners, port) = (bound.listeners, bound.port);
        let rules =
            OriginRules::new(port, &settings.dev_origins, settings.allow_http_loopback).map_err(Error::InvalidInput)?;
        (Some((listeners, rules)), Some(port))
    } else {
        (None, None)
    };

    let origins = OriginStore::open(OriginStore::default_path(settings.data_dir.as_deref())?);
    let (carriers, changes) =
        Carriers::new(drivers, settings.limits.carrier_queue_depth, settings.limits.carrier_queue_timeout());
    let pinentry = Pinentry::new(
        settings.pinentry.program.clone(),
        settings.pinentry.args.clone(),
        Duration::from_secs(settings.pinentry.timeout_secs),
    );
    let consent = Consent::new(pinentry, PinCache::new(settings.pin_cache));
    let service = Service::new(settings, Arc::clone(&carriers), origins, gate, consent);
    service.set_endpoints(Endpoints { socket: socket_path.clone(), port });
    tokio::spawn(forward_changes(changes, Arc::clone(&service)));
    carriers.start().await;

    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(unix::serve(unix_listener, Arc::clone(&service), service.shutdown_signal())));
    if let (Some((listeners, rules)), Some(port)) = (ws, port) {
        tasks.push(tokio::spawn(websocket::serve(
            listeners,
            port,
            rules,
            Arc::clone(&service),
            service.shutdown_signal(),
        )));
    }

    let status = AgentStatus {
        pid: std::process::id(),
        socket: socket_path.clone(),
        port,
        version: env!("CARGO_PKG_VERSION").to_string(),
        started: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    };
    lock.write_status(&status)?;
    log::info!(
        "ukey agent {} listening on {}{}",
        status.version,
        socket_path.display(),
        port.map(|p| format!(" and ws://127.0.0.1:{p}{} (demo page http://127.0.0.1:{p}/)", websocket::RPC_PATH))
            .unwrap_or_default()
    );
    on_ready(&status);

    stop_signals.wait(&service).await;
    log::info!("ukey agent stopping");
    service.request_shutdown();
    carriers.stop();
    service.consent.cache.clear();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    service.drain(Duration::from_secs(1)).await;
    lock.clean_up(if activated { None } else { Some(&socket_path) });
    Ok(())
}

/// The Unix listener: the one systemd passed (socket activation), or our own, bound after a stale
/// socket was removed, with mode 0600. The flag says whether systemd owns it.
fn unix_listener(lock: &InstanceLock, path: &PathBuf) -> Result<(UnixListener, bool), Error> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() > 0 {
        match fds.take_unix_listener(0) {
            Ok(Some(l)) => {
                l.set_nonblocking(true).map_err(|e| Error::io("preparing the activated socket", e))?;
                log::info!("using the Unix socket passed by systemd (socket activation)");
                let listener = UnixListener::from_std(l).map_err(|e| Error::io("adopting the activated socket", e))?;
                return Ok((listener, true));
            }
            Ok(None) | Err(_) => log::warn!("LISTEN_FDS is set but fd 3 is not a Unix socket; binding our own"),
        }
    }
    lock.remove_stale_socket(path)?;
    let listener = UnixListener::bind(path).map_err(|e| Error::io(format!("binding {}", path.display()), e))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| Error::io(format!("closing {} to other users", path.display()), e))?;
    Ok((listener, false))
}

/// SIGTERM and SIGINT, caught from the start of [`run`].
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<Self, Error> {
        let term = signal(SignalKind::terminate()).map_err(|e| Error::io("installing the SIGTERM handler", e))?;
        let int = signal(SignalKind::interrupt()).map_err(|e| Error::io("installing the SIGINT handler", e))?;
        Ok(StopSignals { term, int })
    }

    /// Waits for a signal or `agent.shutdown`.
    async fn wait(&mut self, service: &Service) {
        let mut shutdown = service.shutdown_signal();
        tokio::select! {
            _ = self.term.recv() => log::info!("SIGTERM received"),
            _ = self.int.recv() => log::info!("SIGINT received"),
            () = crate::agent::service::until_set(&mut shutdown) => {}
        }
    }
}

/// Lifts the soft open-files limit to the hard one (each WebSocket is a descriptor; the usual soft
/// limit of 1024 would cap the agent below its own connection limit).
fn raise_fd_limit(settings: &AgentSettings) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    let want = (settings.limits.max_websocket_connections + settings.limits.max_unix_connections + 256) as u64;
    if lim.current.is_some_and(|c| c < want) {
        lim.current = match lim.maximum {
            Some(max) => Some(max.min(want)),
            None => Some(want),
        };
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            log::warn!("could not raise the open-files limit: {e}; fewer connections can be served");
        }
    }
}

/// Turns carrier changes into client events, and wipes cached PINs of removed carriers.
async fn forward_changes(mut changes: mpsc::UnboundedReceiver<CarrierChange>, service: Arc<Service>) {
    while let Some(change) = changes.recv().await {
        let event = match change {
            CarrierChange::Inserted(info) => AgentEvent::Inserted { token: Box::new(TokenView::new(&info, None)) },
            CarrierChange::Removed(id) => {
                service.consent.cache.wipe_carrier(&id);
                AgentEvent::Removed { token: id.to_string() }
            }
            CarrierChange::Changed(id) => AgentEvent::CertsChanged { token: id.to_string() },
        };
        service.events.publish(event);
    }
}
