//! The module's client of the holder's agent: which socket, which connection for which call, and
//! the typed `carrier.*` calls the PKCS#11 functions need.
//!
//! Two kinds of connection:
//! - the *primary* link carries the login: the agent remembers a `carrier.login` for the
//!   connection it came on, so `C_Login`, `C_Sign` and `C_Logout` all go over this one link.
//!   Each new primary link gets a new generation number; a login made on an older generation is
//!   gone (the agent restarted or the link broke), and signing then says `CKR_USER_NOT_LOGGED_IN`
//!   instead of surprising the holder with a PIN dialog;
//! - *pooled* links for everything that reads (carriers, PIN state, objects), so a thread
//!   listing slots is never stuck behind another thread's PIN dialog.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use ukey_api::crypto::encoding::{base64_decode, base64_encode};
use ukey_api::{Capabilities, CarrierInfo, Mechanism, ObjectId, ObjectList, Pin, PinState};

use crate::link::{Link, LinkError};

/// How long connecting and the `hello` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reading call may take (a slow card reads its certificates in a few seconds).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a call that may show the holder a PIN dialog may take (the agent's dialog has its
/// own timeout; this only keeps a dead agent from hanging the program forever).
const INTERACTIVE_TIMEOUT: Duration = Duration::from_secs(600);
/// Idle pooled links kept open.
const POOL_SIZE: usize = 4;

/// Environment variable naming the agent's socket explicitly (tests, unusual setups).
pub const SOCKET_ENV: &str = "UKEY_AGENT_SOCKET";

/// What `carrier.sign` is asked.
pub struct SignRequest<'a> {
    /// Carrier id.
    pub token: &'a str,
    /// Key id.
    pub key: &'a ObjectId,
    /// Contract mechanism.
    pub mechanism: &'a Mechanism,
    /// The mechanism's digest (what most carriers sign).
    pub digest: &'a [u8],
    /// The message, when the module has it (carriers that hash themselves need it).
    pub message: Option<&'a [u8]>,
    /// A PIN the program gave for this one signature (`C_Login(CKU_CONTEXT_SPECIFIC, pin)`).
    pub pin: Option<&'a Pin>,
    /// The login generation this signature relies on; `None` when the agent is to ask the
    /// holder for this signature (keys that always authenticate).
    pub login: Option<u64>,
}

/// The agent, as the module reaches it.
pub struct Agent {
    socket: Option<PathBuf>,
    primary: Mutex<Option<(Link, u64)>>,
    generation: AtomicU64,
    pool: Mutex<Vec<Link>>,
    absent_noted: AtomicBool,
}

impl Agent {
    /// The agent of the user running this program (nothing is contacted yet).
    pub fn for_current_user() -> Self {
        Agent::at(socket_path())
    }

    /// The agent listening at `socket` (`None`: no socket can be named; every call fails).
    pub fn at(socket: Option<PathBuf>) -> Self {
        Agent {
            socket,
            primary: Mutex::new(None),
            generation: AtomicU64::new(0),
            pool: Mutex::new(Vec::new()),
            absent_noted: AtomicBool::new(false),
        }
    }

    /// The socket path, for messages.
    pub fn socket(&self) -> Option<&PathBuf> {
        self.socket.as_ref()
    }

    fn connect(&self) -> Result<Link, LinkError> {
        let path = self.socket.clone().ok_or_else(|| {
            LinkError::NotRunning(PathBuf::from("$XDG_RUNTIME_DIR/ukey/agent.sock (XDG_RUNTIME_DIR is not set)"))
        })?;
        match Link::connect(&path, CONNECT_TIMEOUT) {
            Ok(link) => {
                if self.absent_noted.swap(false, Ordering::Relaxed) {
                    log::info!("the ukey agent at {} answers again", path.display());
                }
                Ok(link)
            }
            Err(e) => {
                if !self.absent_noted.swap(true, Ordering::Relaxed) {
                    log::warn!("ukey agent not reachable, so no carriers are shown: {e}");
                }
                Err(e)
            }
        }
    }

    /// Runs `f` on an idle pooled link (or a new one) and keeps the link if it stayed usable.
    fn pooled<T>(&self, f: impl FnOnce(&mut Link) -> Result<T, LinkError>) -> Result<T, LinkError> {
        let idle = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut link = match idle {
            Some(l) => l,
            None => self.connect()?,
        };
        let result = f(&mut link);
        if link.usable()
            && let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOL_SIZE
        {
            pool.push(link);
        }
        result
    }

    /// Runs `f` on the primary link. With `expected` set, the link must be that generation (the
    /// login lives there); otherwise a broken or missing link is replaced. Returns the generation
    /// used.
    fn primary<T>(
        &self,
        expected: Option<u64>,
        f: impl FnOnce(&mut Link) -> Result<T, LinkError>,
    ) -> Result<(T, u64), LinkError> {
        let mut slot =
            self.primary.lock().map_err(|_| LinkError::Protocol("the connection lock is poisoned".into()))?;
        if slot.as_ref().is_some_and(|(l, _)| !l.usable()) {
            *slot = None;
        }
        if let Some(want) = expected
            && slot.as_ref().map(|(_, g)| *g) != Some(want)
        {
            return Err(LinkError::LoginLost);
        }
        if slot.is_none() {
            let link = self.connect()?;
            let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
            *slot = Some((link, generation));
        }
        let Some((link, generation)) = slot.as_mut() else {
            return Err(LinkError::Protocol("no connection".into()));
        };
        let generation = *generation;
        let result = f(link);
        if !link.usable() {
            *slot = None;
        }
        result.map(|v| (v, generation))
    }

    /// True when the login made on `generation` can still be used.
    pub fn login_alive(&self, generation: u64) -> bool {
        self.primary.lock().ok().and_then(|s| s.as_ref().map(|(l, g)| l.usable() && *g == generation)).unwrap_or(false)
    }

    /// Every carrier the agent serves now.
    pub fn carriers(&self) -> Result<Vec<CarrierInfo>, LinkError> {
        #[derive(serde::Deserialize)]
        struct List {
            carriers: Vec<CarrierInfo>,
        }
        let list: List = self.read_call("carrier.list", json!({}))?;
        Ok(list.carriers)
    }

    /// A carrier's PIN state.
    pub fn pin_state(&self, token: &str) -> Result<PinState, LinkError> {
        self.read_call("carrier.pin_state", json!({ "token": token }))
    }

    /// What a carrier can do.
    pub fn capabilities(&self, token: &str) -> Result<Capabilities, LinkError> {
        self.read_call("carrier.capabilities", json!({ "token": token }))
    }

    /// A carrier's certificates and keys.
    pub fn objects(&self, token: &str) -> Result<ObjectList, LinkError> {
        self.read_call("carrier.objects", json!({ "token": token }))
    }

    fn read_call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, LinkError> {
        let value = self.pooled(|l| l.call(method, params, None, READ_TIMEOUT))?;
        serde_json::from_value(value).map_err(|e| LinkError::Protocol(format!("{method}: {e}")))
    }

    /// Logs in to a carrier for this program: the agent checks `pin`, or asks the holder through
    /// its PIN dialog when `None`, and keeps the login for this connection. Returns the login's
    /// generation.
    pub fn login(&self, token: &str, pin: Option<&Pin>) -> Result<u64, LinkError> {
        let params = json!({ "token": token });
        let ((), generation) = self.primary(None, |l| {
            l.call("carrier.login", params, pin.map(|p| ("pin", p.expose())), INTERACTIVE_TIMEOUT).map(|_| ())
        })?;
        Ok(generation)
    }

    /// Ends the login on a carrier (nothing to do when the login's connection is gone already).
    pub fn logout(&self, token: &str, generation: u64) -> Result<(), LinkError> {
        match self
            .primary(Some(generation), |l| l.call("carrier.logout", json!({ "token": token }), None, READ_TIMEOUT))
        {
            Ok(_) | Err(LinkError::LoginLost) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Signs through the agent (gated, audited; a PIN dialog when the login does not cover it).
    pub fn sign(&self, req: &SignRequest<'_>) -> Result<Vec<u8>, LinkError> {
        let mut params = json!({
            "token": req.token,
            "key": req.key.to_hex(),
            "mechanism": req.mechanism,
            "digest": base64_encode(req.digest),
        });
        if let Some(m) = req.message {
            params["message"] = json!(base64_encode(m));
        }
        if req.login.is_none() && req.pin.is_none() {
            // Ask the holder for this signature even if a login exists.
            params["fresh"] = json!(true);
        }
        let (answer, _) = self.primary(req.login, |l| {
            l.call("carrier.sign", params, req.pin.map(|p| ("pin", p.expose())), INTERACTIVE_TIMEOUT)
        })?;
        let text = answer
            .get("signature")
            .and_then(Value::as_str)
            .ok_or_else(|| LinkError::Protocol("carrier.sign answered without a signature".into()))?;
        base64_decode(text).map_err(LinkError::Protocol)
    }

    /// A new link subscribed to the agent's carrier events.
    pub fn subscribe(&self) -> Result<Link, LinkError> {
        let mut link = self.connect()?;
        link.call("events.subscribe", json!({}), None, READ_TIMEOUT)?;
        Ok(link)
    }
}

/// The agent's socket: `$UKEY_AGENT_SOCKET`, else `$XDG_RUNTIME_DIR/ukey/agent.sock`, else
/// `/run/user/UID/ukey/agent.sock` (the same place the agent listens).
pub fn socket_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(base) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(base).join("ukey").join("agent.sock"));
    }
    let fallback = PathBuf::from(format!("/run/user/{}", rustix::process::getuid().as_raw()));
    fallback.is_dir().then(|| fallback.join("ukey").join("agent.sock"))
}
