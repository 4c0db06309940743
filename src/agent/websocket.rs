//! The loopback WebSocket transport for web pages, on 127.0.0.1 and ::1 only.
//!
//! Every request on the port passes the `Host` check (DNS rebinding) before anything else; an
//! upgrade (to `/rpc`) also passes the `Origin` check. Refusals are plain 403s that never echo the
//! Origin and carry no CORS header. Frames and messages are size-limited by tungstenite; the
//! request head must arrive within the handshake timeout; a connection that stays silent (pongs
//! count) for the idle timeout is closed; the server pings so a live page is never idle.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::agent::gate::ClientIdentity;
use crate::agent::http::{self, HeadError, Reply, RequestHead};
use crate::agent::service::{Service, Transport};
use crate::agent::webguard::{OriginRules, check_host};

/// The path of the JSON-RPC WebSocket.
pub const RPC_PATH: &str = "/rpc";

/// Binds the port on both loopback addresses. Port 0 picks a free port (the same on both).
/// IPv6 loopback missing is not fatal; IPv4 loopback is. A requested port whose IPv6 side is
/// held by another program counts as taken (`AddrInUse`): a page reaching `localhost` must not
/// meet a different agent than one reaching 127.0.0.1.
pub async fn bind(port: u16) -> std::io::Result<(Vec<TcpListener>, u16)> {
    let requested = port;
    let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let port = v4.local_addr()?.port();
    let mut listeners = vec![v4];
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await {
        Ok(v6) => listeners.push(v6),
        Err(e) if requested != 0 && e.kind() == std::io::ErrorKind::AddrInUse => return Err(e),
        Err(e) => log::warn!("not listening on [::1]:{port} ({e}); pages must use 127.0.0.1 or localhost"),
    }
    Ok((listeners, port))
}

/// Accepts connections on every listener until shutdown.
pub async fn serve(
    listeners: Vec<TcpListener>,
    port: u16,
    rules: OriginRules,
    service: Arc<Service>,
    shutdown: watch::Receiver<bool>,
) {
    let rules = Arc::new(rules);
    let slots = Arc::new(Semaphore::new(service.settings.limits.max_websocket_connections));
    let mut tasks = Vec::new();
    for listener in listeners {
        let (rules, slots, service, mut shutdown) =
            (Arc::clone(&rules), Arc::clone(&slots), Arc::clone(&service), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let permit = Arc::clone(&slots).try_acquire_owned().ok();
                            let (rules, service) = (Arc::clone(&rules), Arc::clone(&service));
                            tokio::spawn(async move {
                                connection(stream, port, &rules, service, permit.is_some()).await;
                                drop(permit);
                            });
                        }
                        Err(e) => {
                            log::warn!("accepting on port {port} failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                    () = crate::agent::service::until_set(&mut shutdown) => break,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn connection(mut stream: TcpStream, port: u16, rules: &OriginRules, service: Arc<Service>, has_slot: bool) {
    // Issue 6: only this account's programs may talk to this account's agent (another user's
    // browser on a shared machine is refused before anything is read).
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else { return };
    if let Err(why) = crate::policy::peer::check_same_account(peer, local, service.uid) {
        log::warn!("refused a connection on port {port}: {why}");
        let _ = Reply::text(403, why).send(&mut stream).await;
        return;
    }
    let limits = &service.settings.limits;
    let (head, rest) = match tokio::time::timeout(limits.handshake_timeout(), http::read_head(&mut stream)).await {
        Ok(Ok(h)) => h,
        Ok(Err(HeadError::TooLarge)) => {
            let _ = Reply::text(431, "request head too large").send(&mut stream).await;
            return;
        }
        Ok(Err(HeadError::Malformed)) => {
            let _ = Reply::text(400, "not an HTTP/1.1 request").send(&mut stream).await;
            return;
        }
        Ok(Err(HeadError::Closed)) | Err(_) => return,
    };
    if let Err(why) = check_host(head.header("host"), port) {
        log::warn!("refused a request on port {port}: {why}");
        let _ = Reply::text(421, why).send(&mut stream).await;
        return;
    }
    let wants_upgrade = head.header_has_token("upgrade", "websocket");
    if !wants_upgrade {
        let reply = match (head.method.as_str(), http::static_file(&head.path, port)) {
            ("GET" | "HEAD", Some(file)) => file,
            ("GET" | "HEAD", None) if head.path == RPC_PATH => Reply::text(426, "this path speaks WebSocket only"),
            ("GET" | "HEAD", None) => Reply::text(404, "not found"),
            _ => Reply::text(405, "only GET is served here"),
        };
        let _ = reply.send(&mut stream).await;
        return;
    }
    let origin = match check_upgrade(&head, rules) {
        Ok(o) => o,
        Err(why) => {
            log::warn!("refused a WebSocket upgrade: {why}");
            let _ = Reply::text(403, why).send(&mut stream).await;
            return;
        }
    };
    if !has_slot {
        log::warn!("refused a WebSocket from {origin}: {} connections already open", limits.max_websocket_connections);
        let _ = Reply::text(503, "too many connections; try again later").send(&mut stream).await;
        return;
    }
    let Some(key) = head.header("sec-websocket-key") else { return };
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if tokio::io::AsyncWriteExt::write_all(&mut stream, response.as_bytes()).await.is_err() {
        return;
    }
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(limits.max_message);
    config.max_frame_size = Some(limits.max_frame);
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(config)).await;
    log::debug!("WebSocket opened by {origin}");
    session(ws, origin, service).await;
}

/// The upgrade checks beyond Host: GET on the RPC path, WebSocket version 13 with a key, and an
/// admissible Origin. Returns the canonical origin.
fn check_upgrade(head: &RequestHead, rules: &OriginRules) -> Result<String, String> {
    if head.method != "GET" || head.path != RPC_PATH {
        return Err(format!("WebSocket upgrades are served on GET {RPC_PATH} only"));
    }
    if !head.header_has_token("connection", "upgrade")
        || head.header("sec-websocket-version") != Some("13")
        || head.header("sec-websocket-key").is_none()
    {
        return Err("not a valid WebSocket (version 13) upgrade".into());
    }
    if head.repeated("origin") {
        return Err("more than one Origin header".into());
    }
    rules.admit(head.header("origin")).map(|o| o.to_string())
}

async fn session(ws: WebSocketStream<TcpStream>, origin: String, service: Arc<Service>) {
    let limits = service.settings.limits.clone();
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<String>(limits.event_buffer.max(8));
    let (close_tx, mut close_rx) = mpsc::channel::<CloseFrame>(1);
    let session =
        service.open_session(Transport::WebSocket, ClientIdentity::Page { origin: origin.clone() }, tx.clone());
    let ping_every = (limits.idle_timeout() / 3).max(Duration::from_secs(1));
    // A page that stops reading must not hold its connection (and the tasks answering it) forever:
    // a send that cannot complete within the idle timeout ends the connection.
    let send_timeout = limits.idle_timeout();
    let reader_origin = origin.clone();
    let mut writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(ping_every);
        ping.tick().await;
        loop {
            let sent = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(text) => tokio::time::timeout(send_timeout, sink.send(Message::text(text))).await,
                    None => break,
                },
                frame = close_rx.recv() => {
                    let _ = tokio::time::timeout(send_timeout, sink.send(Message::Close(frame))).await;
                    break;
                }
                _ = ping.tick() => tokio::time::timeout(send_timeout, sink.send(Message::Ping(Vec::new().into()))).await,
            };
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    log::warn!("closing a WebSocket from {reader_origin}: the page does not read its answers");
                    // Dropping the half-sent sink closes the TCP connection; no close handshake.
                    return;
                }
            }
        }
        let _ = tokio::time::timeout(send_timeout, sink.close()).await;
    });
    let mut writer_done = false;

    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    loop {
        let next = tokio::select! {
            _ = &mut writer => { writer_done = true; break; }
            next = tokio::time::timeout(limits.idle_timeout(), stream.next()) => next,
        };
        let next = match next {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(_) => {
                log::debug!("closing an idle WebSocket from {origin}");
                let _ = close_tx.try_send(CloseFrame { code: CloseCode::Away, reason: "idle".into() });
                break;
            }
        };
        match next {
            Ok(Message::Text(text)) => {
                let permit = tokio::select! {
                    _ = &mut writer => { writer_done = true; break; }
                    permit = Arc::clone(&in_flight).acquire_owned() => permit,
                };
                let Ok(permit) = permit else { break };
                let greeted = session.greeted();
                let (service, session, tx) = (Arc::clone(&service), Arc::clone(&session), tx.clone());
                let work = async move {
                    let _permit = permit;
                    if let Some(answer) = service.handle_message(&session, text.as_str()).await {
                        let _ = tx.send(answer).await;
                    }
                };
                // Until the handshake is done, one message at a time (see Session::greeted).
                if greeted {
                    tokio::spawn(work);
                } else {
                    work.await;
                }
            }
            Ok(Message::Binary(_)) => {
                let _ = close_tx
                    .try_send(CloseFrame { code: CloseCode::Unsupported, reason: "send JSON-RPC as text".into() });
                break;
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(WsError::Capacity(e)) => {
                log::warn!("closing a WebSocket from {origin}: {e}");
                let _ = close_tx.try_send(CloseFrame { code: CloseCode::Size, reason: "message too large".into() });
                break;
            }
            Err(e) => {
                log::debug!("WebSocket from {origin} ended: {e}");
                break;
            }
        }
    }
    drop(tx);
    drop(close_tx);
    drop(session);
    if !writer_done {
        let _ = writer.await;
    }
}
