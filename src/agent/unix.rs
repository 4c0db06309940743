//! The Unix-socket transport: newline-delimited JSON-RPC for local programs and the CLI.
//!
//! Each connection is checked with SO_PEERCRED: a peer whose uid is not the agent's is told why,
//! logged, and disconnected (the socket's 0600 mode and the 0700 directory normally stop it
//! earlier; this check holds even if they were loosened). Lines are read into zeroizing buffers
//! (a PIN sent by the CLI from `--pin-file` lives only there), bounded in length; requests on one
//! connection run concurrently up to a bound, answers go out as they complete.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, watch};
use zeroize::{Zeroize, Zeroizing};

use crate::agent::error::{AgentError, codes};
use crate::agent::gate::ClientIdentity;
use crate::agent::rpc::{Id, Response, framing_error};
use crate::agent::service::{Service, Transport};

/// Initial capacity of a connection's line buffer.
const INITIAL_BUFFER: usize = 16 * 1024;

/// Accepts connections until shutdown.
pub async fn serve(listener: UnixListener, service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(service.settings.limits.max_unix_connections));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                        log::warn!("refused a Unix-socket connection: {} connections already open",
                            service.settings.limits.max_unix_connections);
                        continue;
                    };
                    let service = Arc::clone(&service);
                    tokio::spawn(async move {
                        let _permit = permit;
                        connection(stream, service).await;
                    });
                }
                Err(e) => {
                    log::warn!("accepting on the Unix socket failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = crate::agent::service::until_set(&mut shutdown) => break,
        }
    }
}

async fn connection(mut stream: UnixStream, service: Arc<Service>) {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            log::warn!("refused a Unix-socket client: its credentials could not be read ({e})");
            return;
        }
    };
    let pid = cred.pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
    if cred.uid() != service.uid {
        log::warn!(
            "refused a Unix-socket client running as uid {} (pid {pid}): only uid {} may use this agent",
            cred.uid(),
            service.uid
        );
        let refusal = Response::failure(
            Id::Null,
            AgentError::Forbidden(format!(
                "this agent belongs to uid {}; connect to your own agent (you are uid {})",
                service.uid,
                cred.uid()
            ))
            .to_rpc(),
        );
        if let Ok(mut text) = serde_json::to_string(&refusal) {
            text.push('\n');
            let _ = stream.write_all(text.as_bytes()).await;
        }
        return;
    }
    let exe: Option<PathBuf> = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let client = ClientIdentity::Program { pid, exe };
    log::debug!("Unix-socket client connected: {}", client.describe());

    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<String>(service.settings.limits.event_buffer.max(8));
    let session = service.open_session(Transport::Unix, client, tx.clone());
    let writer_task = tokio::spawn(async move {
        while let Some(mut text) = rx.recv().await {
            text.push('\n');
            if writer.write_all(text.as_bytes()).await.is_err() {
                break;
            }
        }
    });

    let in_flight = Arc::new(Semaphore::new(service.settings.limits.max_in_flight.max(1)));
    let max = service.settings.limits.max_message;
    let mut lines = LineBuffer::new();
    loop {
        let line = match lines.next_line(&mut reader, max).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(LineError::TooLong) => {
                log::warn!("closing a Unix-socket connection: a message exceeded {max} bytes");
                let resp = Response::failure(
                    Id::Null,
                    framing_error(
                        codes::INVALID_REQUEST,
                        "MessageTooLarge",
                        format!("message larger than {max} bytes"),
                    ),
                );
                if let Ok(text) = serde_json::to_string(&resp) {
                    let _ = tx.send(text).await;
                }
                break;
            }
            Err(LineError::Io) => break,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { break };
        let work_session = Arc::clone(&session);
        let service = Arc::clone(&service);
        let session = Arc::clone(&session);
        let tx = tx.clone();
        let work = async move {
            let _permit = permit;
            let answer = match std::str::from_utf8(&line) {
                Ok(text) => service.handle_message(&session, text).await,
                Err(_) => serde_json::to_string(&Response::failure(
                    Id::Null,
                    framing_error(codes::PARSE_ERROR, "ParseError", "message is not UTF-8"),
                ))
                .ok(),
            };
            drop(line);
            if let Some(text) = answer {
                let _ = tx.send(text).await;
            }
        };
        if work_session.greeted() {
            tokio::spawn(work);
        } else {
            work.await;
        }
    }
    drop(tx);
    drop(session);
    // In-flight requests hold their own senders; the writer ends when the last one is done.
    let _ = writer_task.await;
}

enum LineError {
    TooLong,
    Io,
}

/// Reads lines into buffers that are wiped on drop and on growth.
struct LineBuffer {
    pending: Zeroizing<Vec<u8>>,
}

impl LineBuffer {
    fn new() -> Self {
        LineBuffer { pending: Zeroizing::new(Vec::with_capacity(INITIAL_BUFFER)) }
    }

    /// Grows by moving into a new zeroizing buffer, so the old allocation is wiped, not leaked.
    fn reserve(&mut self, more: usize) {
        if self.pending.capacity() - self.pending.len() >= more {
            return;
        }
        let mut bigger =
            Zeroizing::new(Vec::with_capacity((self.pending.len() + more).max(self.pending.capacity() * 2)));
        bigger.extend_from_slice(&self.pending);
        self.pending = bigger;
    }

    async fn next_line<R: AsyncReadExt + Unpin>(
        &mut self,
        reader: &mut R,
        max: usize,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, LineError> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.pending[scanned..].iter().position(|b| *b == b'\n').map(|p| p + scanned) {
                let mut line = Zeroizing::new(Vec::with_capacity(pos));
                line.extend_from_slice(&self.pending[..pos]);
                let total = self.pending.len();
                self.pending.copy_within(pos + 1..total, 0);
                let rest = total - pos - 1;
                self.pending[rest..].zeroize();
                self.pending.truncate(rest);
                return Ok(Some(line));
            }
            scanned = self.pending.len();
            if self.pending.len() > max {
                return Err(LineError::TooLong);
            }
            let mut chunk = Zeroizing::new([0u8; 8192]);
            let n = reader.read(&mut chunk[..]).await.map_err(|_| LineError::Io)?;
            if n == 0 {
                return Ok(None);
            }
            self.reserve(n);
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        let data: &[u8] = b"{\"a\":1}\n{\"b\":2}\npartial";
        let mut r = data;
        let mut lb = LineBuffer::new();
        assert_eq!(&lb.next_line(&mut r, 100).await.ok().flatten().unwrap()[..], b"{\"a\":1}");
        assert_eq!(&lb.next_line(&mut r, 100).await.ok().flatten().unwrap()[..], b"{\"b\":2}");
        assert!(matches!(lb.next_line(&mut r, 100).await, Ok(None)));
        let big = vec![b'x'; 50_000];
        let mut r = &big[..];
        let mut lb = LineBuffer::new();
        assert!(matches!(lb.next_line(&mut r, 20_000).await, Err(LineError::TooLong)));
    }
}
