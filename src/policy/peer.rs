//! Whose program is on the other end of a loopback TCP connection.
//!
//! A WebSocket client has no SO_PEERCRED, but on the same machine its socket is listed in
//! `/proc/net/tcp` (IPv4) or `/proc/net/tcp6` (IPv6, including IPv4-mapped addresses) with the uid
//! that owns it. The client's socket is the row whose local address is the connection's peer
//! address and whose remote address is our own end. Another account's browser reaching this
//! agent's port is refused this way, before any message is read.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP state TIME_WAIT: such rows have lost their owner (uid 0) and never stand for a live peer.
const TCP_TIME_WAIT: u8 = 0x06;
/// TCP state CLOSE: a socket bound but not (yet) listening still holds its port.
const TCP_CLOSE: u8 = 0x07;
/// TCP state LISTEN.
const TCP_LISTEN: u8 = 0x0A;

/// The uid owning the client end of the connection `peer` → `local`, from the kernel's tables.
/// `None` when no live socket matches (the client already closed).
pub fn tcp_peer_uid(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    tcp_peer_uid_in(&["/proc/net/tcp", "/proc/net/tcp6"], peer, local)
}

/// [`tcp_peer_uid`] over the given table files.
pub fn tcp_peer_uid_in(tables: &[&str], peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    let (peer, local) = (canonical(peer), canonical(local));
    search_tables(tables, |text| find_in_table(text, peer, local))
}

/// Reads each table that exists and returns the first uid `find` picks out of one; an error when
/// no table could be read at all.
fn search_tables(tables: &[&str], find: impl Fn(&str) -> Option<u32>) -> io::Result<Option<u32>> {
    let mut read_any = false;
    for table in tables {
        let text = match std::fs::read_to_string(table) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        read_any = true;
        if let Some(uid) = find(&text) {
            return Ok(Some(uid));
        }
    }
    if read_any { Ok(None) } else { Err(io::Error::new(io::ErrorKind::NotFound, "no /proc/net/tcp table")) }
}

/// The uid owning the socket that holds a loopback TCP `port` (listening, or bound and about to
/// listen), from the kernel's tables. An agent whose port is taken uses it to tell another
/// account's agent (move on to the next port of the range) from one of its own account's
/// programs (stop: two agents of one account would confuse the clients' discovery).
/// `None` when no such socket is listed (it closed meanwhile).
pub fn tcp_port_holder_uid(port: u16) -> io::Result<Option<u32>> {
    tcp_port_holder_uid_in(&["/proc/net/tcp", "/proc/net/tcp6"], port)
}

/// [`tcp_port_holder_uid`] over the given table files.
pub fn tcp_port_holder_uid_in(tables: &[&str], port: u16) -> io::Result<Option<u32>> {
    search_tables(tables, |text| find_holder_in_table(text, port))
}

fn find_holder_in_table(text: &str, port: u16) -> Option<u32> {
    let mut bound = None;
    for line in text.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (Some(_sl), Some(row_local), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(addr) = parse_addr(row_local).map(canonical) else { continue };
        if addr.port() != port || !(addr.ip().is_loopback() || addr.ip().is_unspecified()) {
            continue;
        }
        let state = u8::from_str_radix(state, 16).ok();
        if state != Some(TCP_LISTEN) && state != Some(TCP_CLOSE) {
            continue;
        }
        let Some(uid) = fields.nth(3).and_then(|u| u.parse::<u32>().ok()) else { continue };
        // A listener is the holder for sure; a bound socket only if no listener is listed.
        if state == Some(TCP_LISTEN) {
            return Some(uid);
        }
        bound.get_or_insert(uid);
    }
    bound
}

/// Checks that the connection's client belongs to `uid`; the error says why not, for the log and
/// the HTTP 403 body. It names both accounts' uids, so a person (or a client looking for its own
/// agent across the port range) sees at once that this is someone else's agent.
pub fn check_same_account(peer: SocketAddr, local: SocketAddr, uid: u32) -> Result<(), String> {
    match tcp_peer_uid(peer, local) {
        Ok(Some(u)) if u == uid => Ok(()),
        Ok(Some(u)) => Err(format!(
            "this ukey agent belongs to another account (uid {uid}); the connection comes from uid {u}; each account \
             reaches its own agent (ukey.js finds it on the next ports of the range; `ukey agent status` prints its port)"
        )),
        Ok(None) => Err("the connecting program could not be identified (its socket is not in /proc/net/tcp)".into()),
        Err(e) => Err(format!("the connecting program could not be identified ({e})")),
    }
}

fn find_in_table(text: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    for line in text.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (_sl, row_local, row_remote, state) = (fields.next()?, fields.next(), fields.next(), fields.next());
        let (Some(row_local), Some(row_remote), Some(state)) = (row_local, row_remote, state) else { continue };
        if u8::from_str_radix(state, 16).ok() == Some(TCP_TIME_WAIT) {
            continue;
        }
        let (Some(a), Some(b)) = (parse_addr(row_local), parse_addr(row_remote)) else { continue };
        if canonical(a) != peer || canonical(b) != local {
            continue;
        }
        // tx_queue:rx_queue, tr:tm->when, retrnsmt, then uid.
        let uid = fields.nth(3)?;
        return uid.parse().ok();
    }
    None
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:` port (IPv6): each 32-bit word as the kernel
/// printed it, in this machine's byte order.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(addr, 16).ok()?.to_ne_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// IPv4-mapped IPv6 addresses as plain IPv4, so both tables compare alike.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn finds_our_own_client_socket_over_ipv4_and_ipv6() {
        let me = rustix::process::getuid().as_raw();
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = TcpListener::bind(bind) else { continue };
            let server = listener.local_addr().unwrap();
            let client = TcpStream::connect(server).unwrap();
            let (accepted, peer) = listener.accept().unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            assert_eq!(tcp_peer_uid(peer, accepted.local_addr().unwrap()).unwrap(), Some(me), "{bind}");
            assert!(check_same_account(peer, server, me).is_ok());
            assert!(check_same_account(peer, server, me + 1).unwrap_err().contains("another account"));
        }
    }

    #[test]
    fn parses_kernel_rows() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 123 1\n";
        let peer: SocketAddr = "127.0.0.1:54321".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(find_in_table(table, peer, local), Some(1001));
        }
        assert_eq!(find_in_table(table, local, peer), None);
    }

    #[test]
    fn finds_the_holder_of_a_listening_port() {
        let me = rustix::process::getuid().as_raw();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(tcp_port_holder_uid(port).unwrap(), Some(me));
        drop(listener);
        assert_eq!(tcp_port_holder_uid(port).unwrap(), None);
    }

    #[test]
    fn a_listener_wins_over_a_connection_on_the_same_port_number() {
        // Row 0: a client connection whose local port happens to be 8080 (state ESTABLISHED, not
        // a holder); row 1: the listener of uid 1001 on 0.0.0.0:8080.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     7        0 1 1\n   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 2 1\n";
        assert_eq!(find_holder_in_table(table, 8080), Some(1001));
        assert_eq!(find_holder_in_table(table, 8081), None);
    }
}
