//! The table of methods the agent answers: on which transport, behind which grant.
//!
//! One table, read by the dispatcher (to refuse admin methods on the WebSocket and check grants
//! before any work), by `hello` (to tell clients what they may call) and by the test that checks
//! `docs/agent-protocol.json` documents every method.

use crate::agent::origins::Grant;

/// Where a method is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Both transports (pages need the grant).
    Both,
    /// The Unix socket only: administration and local programs.
    UnixOnly,
}

/// One method.
#[derive(Debug, Clone, Copy)]
pub struct MethodSpec {
    /// JSON-RPC method name.
    pub name: &'static str,
    /// Transports.
    pub reach: Reach,
    /// The grant a page needs (`None`: callable before pairing, i.e. `hello` and `pair`).
    pub grant: Option<Grant>,
}

const fn both(name: &'static str, grant: Option<Grant>) -> MethodSpec {
    MethodSpec { name, reach: Reach::Both, grant }
}

const fn unix(name: &'static str) -> MethodSpec {
    MethodSpec { name, reach: Reach::UnixOnly, grant: None }
}

/// Every method.
pub const METHODS: &[MethodSpec] = &[
    both("hello", None),
    both("pair", None),
    both("tokens.list", Some(Grant::Sign)),
    both("certs.list", Some(Grant::Sign)),
    both("sign", Some(Grant::Sign)),
    both("auth", Some(Grant::Sign)),
    both("events.subscribe", Some(Grant::Sign)),
    both("events.unsubscribe", Some(Grant::Sign)),
    both("keys.generate", Some(Grant::Enroll)),
    both("csr.create", Some(Grant::Enroll)),
    both("certs.import", Some(Grant::Enroll)),
    unix("keys.list"),
    unix("pin.change"),
    unix("pin.unblock"),
    unix("token.init"),
    unix("origins.list"),
    unix("origins.pair"),
    unix("origins.revoke"),
    unix("agent.status"),
    unix("carrier.list"),
    unix("carrier.capabilities"),
    unix("carrier.pin_state"),
    unix("carrier.objects"),
    unix("carrier.sign"),
    unix("carrier.generate_key"),
    unix("carrier.import_certificate"),
    unix("carrier.write_data"),
    unix("carrier.read_data"),
    unix("carrier.delete_object"),
    unix("carrier.verify_pin"),
    unix("carrier.login"),
    unix("carrier.logout"),
    unix("carrier.change_pin"),
    unix("carrier.unblock_pin"),
    unix("carrier.initialize"),
    unix("agent.shutdown"),
];

/// Looks a method up.
pub fn find(name: &str) -> Option<&'static MethodSpec> {
    METHODS.iter().find(|m| m.name == name)
}

/// Names of the methods a transport serves, for `hello`.
pub fn names_for(websocket: bool) -> Vec<&'static str> {
    METHODS.iter().filter(|m| !websocket || m.reach == Reach::Both).map(|m| m.name).collect()
}
