//! Which WebSocket port the agent takes on a machine where several accounts run their own agent.
//!
//! Pages find an agent on a fixed, documented range of loopback ports: 24815 and the next
//! [`DEFAULT_PORT_RANGE`]` - 1` (24815–24822). The first account's agent takes the first port;
//! an agent whose port is held by **another account** (its agent, or any program of that account)
//! takes the next free port of the range. It never shares a port (no `SO_REUSEPORT`), and it
//! stops rather than move on when the port is held by a program of **its own** account (a second
//! agent of the same account would make discovery pick whichever answers first) or by a program
//! nobody can identify. The port it got is published in the status file (`agent.json` in the
//! private runtime directory, read by `ukey agent status`); a page's client tries the range in
//! order and keeps the first agent that accepts it — its own, since every other account's agent
//! refuses it with 403 naming both uids (`crate::policy::peer::check_same_account`).

use std::io;

use tokio::net::TcpListener;

use ukey_api::Error;

use crate::agent::websocket;
use crate::policy::accounts::Account;
use crate::policy::peer::tcp_port_holder_uid;

/// How many ports the range has, the configured port included (24815–24822 by default). Kept
/// equal to `DEFAULT_PORT_RANGE` of `web/ukey.js`.
pub const DEFAULT_PORT_RANGE: u16 = 8;

/// Why a port of the range was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The port.
    pub port: u16,
    /// The account holding it.
    pub holder: u32,
}

/// The listeners (127.0.0.1 and, where it exists, ::1), the port they are on, and the ports of
/// the range passed over because other accounts hold them.
pub struct Bound {
    /// The listeners.
    pub listeners: Vec<TcpListener>,
    /// The port taken.
    pub port: u16,
    /// Ports passed over, in order.
    pub skipped: Vec<Skipped>,
}

/// Binds the first port of `base .. base + range` not held by another account. `base` 0 picks
/// any free port (tests). `own_uid` is this agent's account.
pub async fn bind_in_range(base: u16, range: u16, own_uid: u32) -> Result<Bound, Error> {
    if base == 0 {
        let (listeners, port) =
            websocket::bind(0).await.map_err(|e| Error::io("listening on a free loopback port", e))?;
        return Ok(Bound { listeners, port, skipped: Vec::new() });
    }
    let last = base.saturating_add(range.max(1) - 1);
    let mut skipped = Vec::new();
    for port in base..=last {
        match websocket::bind(port).await {
            Ok((listeners, port)) => {
                if !skipped.is_empty() {
                    log::info!(
                        "port {base} is held by another account's program ({}); this agent listens on port {port} \
                         of the range {base}-{last} (pages find it there; `ukey agent status` prints it)",
                        describe(&skipped)
                    );
                }
                return Ok(Bound { listeners, port, skipped });
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(Error::io(format!("listening on 127.0.0.1:{port}"), e)),
        }
        match tcp_port_holder_uid(port) {
            Ok(Some(holder)) if holder != own_uid => {
                log::debug!("port {port} is held by uid {holder}; trying the next port of the range");
                skipped.push(Skipped { port, holder });
            }
            Ok(Some(_)) => {
                return Err(taken(format!(
                    "port {port} is already used by a program of your own account ({}) — another ukey agent with \
                     another runtime directory? Stop it (`ukey agent stop` with its XDG_RUNTIME_DIR), or give this \
                     agent another port (--port, or `port` in the [agent] config)",
                    Account::of_uid(own_uid).label()
                )));
            }
            Ok(None) | Err(_) => {
                return Err(taken(format!(
                    "port {port} is in use, and the program holding it could not be identified (its socket is not \
                     listed in /proc/net/tcp); the agent does not move on without knowing it is another account's. \
                     Free the port, or give this agent another one (--port, or `port` in the [agent] config)"
                )));
            }
        }
    }
    Err(taken(format!(
        "every port of the agent range {base}-{last} is held by other accounts ({}); stop an agent that is no longer \
         needed, or widen the range (--port-range, or `port_range` in the [agent] config; pages must be told the same \
         range)",
        describe(&skipped)
    )))
}

/// The error of a port the agent will not take.
fn taken(message: String) -> Error {
    Error::io(message, io::Error::from(io::ErrorKind::AddrInUse))
}

/// `24815 by root (uid 0), 24816 by alice (uid 1001)`.
fn describe(skipped: &[Skipped]) -> String {
    skipped
        .iter()
        .map(|s| {
            let account = Account::of_uid(s.holder);
            match account.login {
                Some(login) => format!("{} by {login} (uid {})", s.port, s.holder),
                None => format!("{} by uid {}", s.port, s.holder),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A range of `n` consecutive loopback ports free right now (bound and released).
    fn free_range(n: u16) -> u16 {
        for _ in 0..50 {
            let Ok(probe) = std::net::TcpListener::bind("127.0.0.1:0") else { continue };
            let Ok(addr) = probe.local_addr() else { continue };
            let base = addr.port();
            drop(probe);
            if base.checked_add(n).is_none() {
                continue;
            }
            if (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
                return base;
            }
        }
        panic!("no {n} consecutive free loopback ports");
    }

    #[tokio::test]
    async fn takes_the_configured_port_when_it_is_free() {
        let base = free_range(3);
        let bound = bind_in_range(base, 3, rustix::process::getuid().as_raw()).await.unwrap();
        assert_eq!(bound.port, base);
        assert!(bound.skipped.is_empty());
    }

    #[tokio::test]
    async fn a_port_held_by_its_own_account_stops_it_with_what_to_do() {
        let base = free_range(3);
        let _held = std::net::TcpListener::bind(("127.0.0.1", base)).unwrap();
        let err = bind_in_range(base, 3, rustix::process::getuid().as_raw()).await.err().unwrap().to_string();
        assert!(err.contains(&format!("port {base}")) && err.contains("your own account"), "{err}");
        assert!(err.contains("--port"), "{err}");
    }

    #[tokio::test]
    async fn a_port_held_by_another_account_is_passed_over() {
        // Pretending to be another account is enough here: the holder's uid differs from ours.
        let me = rustix::process::getuid().as_raw();
        let base = free_range(3);
        let _held = std::net::TcpListener::bind(("127.0.0.1", base)).unwrap();
        let bound = bind_in_range(base, 3, me.wrapping_add(1)).await.unwrap();
        assert_eq!(bound.port, base + 1);
        assert_eq!(bound.skipped, vec![Skipped { port: base, holder: me }]);
    }

    #[tokio::test]
    async fn a_full_range_says_who_holds_each_port() {
        let me = rustix::process::getuid().as_raw();
        let base = free_range(2);
        let _a = std::net::TcpListener::bind(("127.0.0.1", base)).unwrap();
        let _b = std::net::TcpListener::bind(("127.0.0.1", base + 1)).unwrap();
        let err = bind_in_range(base, 2, me.wrapping_add(1)).await.err().unwrap().to_string();
        assert!(err.contains(&format!("{base}-{}", base + 1)), "{err}");
        assert!(err.contains(&format!("uid {me}")), "{err}");
        assert!(err.contains("port_range"), "{err}");
    }
}
