//! The one service layer both transports call: sessions, the handshake, the transport and grant
//! checks, and dispatch to the method handlers.
//!
//! A transport opens a [`Session`] per connection (with the client's identity: the page's origin
//! or the program behind SO_PEERCRED) and hands every message to [`Service::handle_message`].
//! Every check that does not depend on the method's work happens here, before any work: the
//! method exists, it is served on this transport, `hello` came first, the page is paired with the
//! grant, and a page sends no PIN.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::agent::carriers::Carriers;
use crate::agent::consent::Consent;
use crate::agent::error::{AgentError, AgentResult};
use crate::agent::events::EventHub;
use crate::agent::gate::{ClientIdentity, Gate};
use crate::agent::methods::{self, Reach};
use crate::agent::origins::OriginStore;
use crate::agent::rpc::{self, Incoming, Notification, PROTOCOL_VERSION, Response};
use crate::agent::settings::AgentSettings;

/// Parameter names that carry secrets; a page may never send them.
const SECRET_PARAMS: &[&str] = &["pin", "so_pin", "new_pin", "old_pin", "puk", "user_pin"];

/// Most event subscriptions on one connection.
const MAX_SUBSCRIPTIONS: usize = 8;

/// Which transport a session came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The per-user Unix socket (local programs, the CLI).
    Unix,
    /// The loopback WebSocket (web pages).
    WebSocket,
}

impl Transport {
    /// The name `hello` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Unix => "unix",
            Transport::WebSocket => "websocket",
        }
    }
}

/// One connection's state.
pub struct Session {
    /// Unique per agent run.
    pub id: u64,
    /// The transport.
    pub transport: Transport,
    /// Who is on the other end.
    pub client: ClientIdentity,
    greeted: AtomicBool,
    outbox: mpsc::Sender<String>,
    subscriptions: Mutex<HashMap<u64, JoinHandle<()>>>,
    live: Arc<(AtomicUsize, Notify)>,
    /// Carriers this connection logged in to (`carrier.login`), with the credential that worked:
    /// the PKCS#11 module's login lasts as long as the program's connection, as a smart card's
    /// login lasts as long as the program's session. Wiped on `carrier.logout` and on disconnect.
    logins: Mutex<HashMap<ukey_api::CarrierId, ukey_api::Credential>>,
}

impl Session {
    /// The page's origin, for WebSocket sessions.
    pub fn origin(&self) -> Option<&str> {
        match &self.client {
            ClientIdentity::Page { origin } => Some(origin),
            ClientIdentity::Program { .. } => None,
        }
    }

    /// True once `hello` succeeded. Until then transports handle messages one at a time, so a
    /// client may send requests right behind its `hello` without waiting for the answer.
    pub fn greeted(&self) -> bool {
        self.greeted.load(Ordering::SeqCst)
    }

    /// True for a web page.
    pub fn is_page(&self) -> bool {
        self.transport == Transport::WebSocket
    }

    fn subscribe(&self, id: u64, task: JoinHandle<()>) -> AgentResult<()> {
        let mut subs = self.subscriptions.lock().map_err(|_| AgentError::Internal("subscriptions lock".into()))?;
        if subs.len() >= MAX_SUBSCRIPTIONS {
            task.abort();
            return Err(AgentError::InvalidParams(format!(
                "this connection already has {MAX_SUBSCRIPTIONS} subscriptions; unsubscribe one first"
            )));
        }
        subs.insert(id, task);
        Ok(())
    }

    /// Remembers a login for this connection.
    pub fn remember_login(&self, carrier: ukey_api::CarrierId, credential: ukey_api::Credential) {
        if let Ok(mut l) = self.logins.lock() {
            l.insert(carrier, credential);
        }
    }

    /// Ends a login; true when there was one.
    pub fn forget_login(&self, carrier: &ukey_api::CarrierId) -> bool {
        self.logins.lock().map(|mut l| l.remove(carrier).is_some()).unwrap_or(false)
    }

    /// The credential of this connection's login to a carrier, if any.
    pub fn login_for(&self, carrier: &ukey_api::CarrierId) -> Option<ukey_api::Credential> {
        self.logins.lock().ok().and_then(|l| l.get(carrier).cloned())
    }

    fn unsubscribe(&self, id: u64) -> bool {
        match self.subscriptions.lock().ok().and_then(|mut s| s.remove(&id)) {
            Some(task) => {
                task.abort();
                true
            }
            None => false,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut subs) = self.subscriptions.lock() {
            for (_, task) in subs.drain() {
                task.abort();
            }
        }
        self.live.0.fetch_sub(1, Ordering::SeqCst);
        self.live.1.notify_waiters();
    }
}

/// Where the agent listens, for `agent.status`.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// Unix socket path.
    pub socket: std::path::PathBuf,
    /// WebSocket port, when served.
    pub port: Option<u16>,
}

/// The service shared by every connection.
pub struct Service {
    /// Settings in force.
    pub settings: AgentSettings,
    /// The carriers and their queues.
    pub carriers: Arc<Carriers>,
    /// Paired origins (shared with event subscriptions, which stop when their origin is revoked).
    pub origins: Arc<OriginStore>,
    /// Policy and audit hook.
    pub gate: Arc<dyn Gate>,
    /// PIN and confirmation dialogs.
    pub consent: Consent,
    /// Event fan-out.
    pub events: EventHub,
    /// The agent's (= the allowed clients') uid.
    pub uid: u32,
    /// The user's login name, when known.
    pub login: Option<String>,
    endpoints: Mutex<Endpoints>,
    started: SystemTime,
    shutdown: watch::Sender<bool>,
    next_id: AtomicU64,
    live_sessions: Arc<(AtomicUsize, Notify)>,
}

impl Service {
    /// Assembles the service.
    pub fn new(
        settings: AgentSettings,
        carriers: Arc<Carriers>,
        origins: OriginStore,
        gate: Arc<dyn Gate>,
        consent: Consent,
    ) -> Arc<Self> {
        let (shutdown, _) = watch::channel(false);
        Arc::new(Service {
            settings,
            carriers,
            origins: Arc::new(origins),
            gate,
            consent,
            events: EventHub::new(),
            uid: rustix::process::getuid().as_raw(),
            login: std::env::var("USER").ok().or_else(|| std::env::var("LOGNAME").ok()),
            endpoints: Mutex::new(Endpoints::default()),
            started: SystemTime::now(),
            shutdown,
            next_id: AtomicU64::new(1),
            live_sessions: Arc::new((AtomicUsize::new(0), Notify::new())),
        })
    }

    /// Records where the agent listens.
    pub fn set_endpoints(&self, endpoints: Endpoints) {
        if let Ok(mut e) = self.endpoints.lock() {
            *e = endpoints;
        }
    }

    /// Resolves when shutdown was requested (`agent.shutdown`, SIGTERM, SIGINT).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Asks the agent to stop.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Waits (at most `limit`) for open connections to finish, so answers already computed —
    /// the one to `agent.shutdown` included — reach their clients before the process exits.
    pub async fn drain(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.live_sessions.1.notified();
            if self.live_sessions.0.load(Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Opens a session; `outbox` carries answers and notifications to the transport's writer.
    pub fn open_session(
        &self,
        transport: Transport,
        client: ClientIdentity,
        outbox: mpsc::Sender<String>,
    ) -> Arc<Session> {
        self.live_sessions.0.fetch_add(1, Ordering::SeqCst);
        Arc::new(Session {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            transport,
            client,
            greeted: AtomicBool::new(false),
            outbox,
            subscriptions: Mutex::new(HashMap::new()),
            live: Arc::clone(&self.live_sessions),
            logins: Mutex::new(HashMap::new()),
        })
    }

    /// Answers one message (request, notification or batch); `None` when nothing is to be sent.
    pub async fn handle_message(self: &Arc<Self>, session: &Arc<Session>, text: &str) -> Option<String> {
        let incoming = match rpc::parse(text, self.settings.limits.max_batch) {
            Ok(i) => i,
            Err(resp) => {
                log::debug!("session {}: unreadable message", session.id);
                return serde_json::to_string(&resp).ok();
            }
        };
        match incoming {
            Incoming::Single(call) => {
                let resp = self.answer(session, call).await?;
                serde_json::to_string(&resp).ok()
            }
            Incoming::Batch(calls) => {
                let mut out = Vec::with_capacity(calls.len());
                for call in calls {
                    if let Some(resp) = self.answer(session, call).await {
                        out.push(resp);
                    }
                }
                if out.is_empty() { None } else { serde_json::to_string(&out).ok() }
            }
        }
    }

    async fn answer(
        self: &Arc<Self>,
        session: &Arc<Session>,
        call: Result<rpc::Call<'_>, Box<Response>>,
    ) -> Option<Response> {
        let call = match call {
            Ok(c) => c,
            Err(resp) => return Some(*resp),
        };
        let limit = self.settings.limits.request_timeout();
        let outcome = match tokio::time::timeout(limit, self.call(session, &call.method, call.params)).await {
            Ok(r) => r,
            Err(_) => Err(AgentError::Carrier(ukey_api::Error::Timeout(format!(
                "the request took longer than {} s",
                limit.as_secs()
            )))),
        };
        if let Err(e) = &outcome {
            log::debug!("session {}: {} failed: {} ({})", session.id, clip(&call.method), e.kind(), e);
        }
        let id = call.id?;
        Some(match outcome {
            Ok(v) => Response::success(id, v),
            Err(e) => Response::failure(id, e.to_rpc()),
        })
    }

    /// Every check that precedes the work, then the method.
    async fn call(
        self: &Arc<Self>,
        session: &Arc<Session>,
        method: &str,
        params: Option<&RawValue>,
    ) -> AgentResult<Value> {
        let spec = methods::find(method).ok_or_else(|| AgentError::MethodNotFound(clip(method)))?;
        if session.is_page() {
            if spec.reach == Reach::UnixOnly {
                log::warn!(
                    "refused `{method}` from the web page {}: administrative methods are Unix-socket only",
                    session.client.describe()
                );
                return Err(AgentError::Forbidden(format!(
                    "`{method}` is an administrative method: it is served only on the Unix socket (the `ukey` CLI), never to web pages"
                )));
            }
            refuse_secrets(params)?;
        }
        if method != "hello" && !session.greeted.load(Ordering::SeqCst) {
            return Err(AgentError::HandshakeRequired(PROTOCOL_VERSION));
        }
        if let (Some(origin), Some(grant)) = (session.origin(), spec.grant) {
            let grants = self.origins.grants(origin);
            if grants.is_empty() {
                return Err(AgentError::NotPaired { origin: origin.to_string() });
            }
            if !grants.contains(&grant) {
                return Err(AgentError::MissingGrant { origin: origin.to_string(), grant: grant.as_str() });
            }
        }
        match method {
            "hello" => self.hello(session, params),
            "pair" => self.pair(session, params).await,
            "tokens.list" => self.tokens_list().await,
            "certs.list" => self.certs_list(params).await,
            "keys.list" => self.keys_list(params).await,
            "events.subscribe" => self.events_subscribe(session),
            "events.unsubscribe" => self.events_unsubscribe(session, params),
            "origins.list" => self.origins_list(),
            "origins.pair" => self.origins_pair(params),
            "origins.revoke" => self.origins_revoke(params),
            "agent.status" => self.status().await,
            "agent.shutdown" => {
                log::info!("shutdown requested by {}", session.client.describe());
                self.request_shutdown();
                Ok(json!({ "stopping": true }))
            }
            other => self.operation(session, other, params).await,
        }
    }

    fn hello(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Hello {
            versions: Vec<u32>,
            #[serde(default)]
            client: Option<String>,
        }
        let p: Hello = parse_params(params)?;
        if !p.versions.contains(&PROTOCOL_VERSION) {
            return Err(AgentError::VersionMismatch { supported: PROTOCOL_VERSION, requested: p.versions });
        }
        session.greeted.store(true, Ordering::SeqCst);
        if let Some(name) = &p.client {
            log::debug!("session {}: client says it is {}", session.id, clip(name));
        }
        let mut out = json!({
            "agent": "ukey",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": PROTOCOL_VERSION,
            "transport": session.transport.as_str(),
            "methods": methods::names_for(session.is_page()),
        });
        if let Some(origin) = session.origin() {
            let grants = self.origins.grants(origin);
            out["origin"] = json!(origin);
            out["paired"] = json!(!grants.is_empty());
            out["grants"] = json!(grants);
        }
        Ok(out)
    }

    fn events_subscribe(&self, session: &Arc<Session>) -> AgentResult<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut rx = self.events.subscribe();
        let outbox = session.outbox.clone();
        let page_origin = session.origin().map(str::to_string);
        let origins = Arc::clone(&self.origins);
        let task = tokio::spawn(async move {
            let mut missed: u64 = 0;
            loop {
                let text = match rx.recv().await {
                    // A page whose origin was revoked (`ukey origins revoke`) learns nothing more about
                    // the carriers: its subscription ends with one last notice.
                    Ok(_) if page_origin.as_deref().is_some_and(|o| origins.grants(o).is_empty()) => {
                        let notice = json!({ "subscription": id, "event": { "type": "events.ended",
                            "reason": "the origin is no longer paired; call `pair` again" } });
                        if let Ok(t) = serde_json::to_string(&Notification::new("events.event", notice)) {
                            let _ = outbox.try_send(t);
                        }
                        log::info!("event subscription {id} ended: its origin is no longer paired");
                        break;
                    }
                    Ok(event) => {
                        let params = json!({ "subscription": id, "event": &*event });
                        serde_json::to_string(&Notification::new("events.event", params))
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        missed += n;
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                let Ok(text) = text else { continue };
                if missed > 0 {
                    let notice = json!({ "subscription": id, "event": { "type": "events.lagged", "missed": missed } });
                    if let Ok(t) = serde_json::to_string(&Notification::new("events.event", notice))
                        && outbox.try_send(t).is_ok()
                    {
                        missed = 0;
                    }
                }
                match outbox.try_send(text) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => missed += 1,
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
        });
        session.subscribe(id, task)?;
        Ok(json!({ "subscription": id }))
    }

    fn events_unsubscribe(&self, session: &Session, params: Option<&RawValue>) -> AgentResult<Value> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Unsub {
            subscription: u64,
        }
        let p: Unsub = parse_params(params)?;
        Ok(json!({ "unsubscribed": session.unsubscribe(p.subscription) }))
    }

    fn origins_list(&self) -> AgentResult<Value> {
        Ok(json!({ "origins": self.origins.list()? }))
    }

    fn origins_pair(&self, params: Option<&RawValue>) -> AgentResult<Value> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Pair {
            origin: String,
            #[serde(default)]
            grants: Option<Vec<crate::agent::origins::Grant>>,
        }
        let p: Pair = parse_params(params)?;
        let origin = crate::agent::webguard::WebOrigin::parse(&p.origin).map_err(AgentError::InvalidParams)?;
        let grants = p.grants.unwrap_or_else(|| vec![crate::agent::origins::Grant::Sign]).into_iter().collect();
        let entry = self.origins.pair(&origin.to_string(), &grants)?;
        log::info!("origin {} paired from the Unix socket with grants {:?}", entry.origin, entry.grants);
        Ok(json!(entry))
    }

    fn origins_revoke(&self, params: Option<&RawValue>) -> AgentResult<Value> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Revoke {
            origin: String,
        }
        let p: Revoke = parse_params(params)?;
        let canonical =
            crate::agent::webguard::WebOrigin::parse(&p.origin).map(|o| o.to_string()).unwrap_or(p.origin.clone());
        let revoked = self.origins.revoke(&canonical)?;
        // Cache keys name a page by its origin (ClientIdentity::describe).
        self.consent.cache.wipe_client(&canonical);
        if revoked {
            log::info!("origin {canonical} revoked");
        }
        Ok(json!({ "origin": canonical, "revoked": revoked }))
    }

    async fn status(&self) -> AgentResult<Value> {
        let endpoints = self.endpoints.lock().map(|e| e.clone()).unwrap_or_default();
        let uptime = self.started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
        let drivers = self.carriers.driver_reports().await;
        Ok(json!({
            "drivers": drivers,
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
            "socket": endpoints.socket,
            "port": endpoints.port,
            "uptime_secs": uptime,
            "carriers": self.carriers.list().len(),
            "sessions": self.live_sessions.0.load(Ordering::SeqCst),
            "subscribers": self.events.subscribers(),
            "pin_cache": self.consent.cache.enabled(),
            "origins_file": self.origins.path(),
        }))
    }
}

/// Deserialises a method's parameters (absent parameters read as `{}`).
pub fn parse_params<'a, T: Deserialize<'a>>(params: Option<&'a RawValue>) -> AgentResult<T> {
    let text = params.map(RawValue::get).unwrap_or("{}");
    serde_json::from_str(text).map_err(|e| AgentError::InvalidParams(e.to_string()))
}

/// Refuses any secret-looking parameter from a page, before the method sees it.
fn refuse_secrets(params: Option<&RawValue>) -> AgentResult<()> {
    let Some(p) = params else { return Ok(()) };
    let Ok(map) = serde_json::from_str::<BTreeMap<String, IgnoredAny>>(p.get()) else { return Ok(()) };
    if let Some(name) = map.keys().find(|k| SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str())) {
        log::warn!("refused a request from a web page that carried a `{name}` parameter");
        return Err(AgentError::Forbidden(
            "a web page never sends a PIN: the agent asks the holder for it in its own dialog; remove the parameter"
                .into(),
        ));
    }
    Ok(())
}

/// Cuts client-supplied text for logs and messages.
pub fn clip(text: &str) -> String {
    let mut s: String = text.chars().take(64).filter(|c| !c.is_control()).collect();
    if text.chars().count() > 64 {
        s.push('…');
    }
    s
}

/// Resolves once `flag` turns true (shutdown); a helper so callers never hold the watch guard.
pub async fn until_set(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|s| *s).await.map(|_| ());
}
