//! The small HTTP front door of the loopback port: reads one request head (bounded in size and
//! time), and serves the demo page and the JS client. WebSocket upgrades are decided in
//! `websocket.rs`; this file only parses and answers plain requests.
//!
//! Every response is `Connection: close`, carries no CORS header (never `*`, never an echoed
//! Origin), forbids framing (the pairing dialog must not be clickjacked from a page that frames
//! the demo) and is not cached.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;

/// Most headers accepted.
const MAX_HEADERS: usize = 32;

/// The parts of a request head the agent looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// Method.
    pub method: String,
    /// Path (query stripped).
    pub path: String,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The value of a header; `None` if absent. A header sent twice is treated as absent, so
    /// two `Host` or `Origin` headers cannot smuggle a second value past a check.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = self.headers.iter().filter(|(n, _)| n == name);
        let first = found.next()?;
        if found.next().is_some() {
            return None;
        }
        Some(first.1.as_str())
    }

    /// True if the header was sent more than once.
    pub fn repeated(&self, name: &str) -> bool {
        self.headers.iter().filter(|(n, _)| n == name).count() > 1
    }

    /// True if a comma-separated header contains `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// Why a head could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Larger than [`MAX_HEAD`] or too many headers.
    TooLarge,
    /// Not HTTP/1.x.
    Malformed,
    /// The peer closed or the read failed.
    Closed,
}

/// Reads one request head; returns it and any bytes that followed it.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let path = req.path.unwrap_or("/");
                let head = RequestHead {
                    method: req.method.unwrap_or("").to_string(),
                    path: path.split('?').next().unwrap_or("/").to_string(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).trim().to_string()))
                        .collect(),
                };
                return Ok((head, buf[len..].to_vec()));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed),
        }
    }
}

/// A complete response.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
    /// Extra headers.
    pub extra: Vec<(&'static str, String)>,
}

impl Reply {
    /// A plain-text reply (refusals say why, for the developer reading the console).
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        let mut body: String = body.into();
        body.push('\n');
        Reply { status, content_type: "text/plain; charset=utf-8", body: body.into_bytes(), extra: Vec::new() }
    }

    /// Writes the reply and flushes.
    pub async fn send<S: AsyncWrite + Unpin>(&self, stream: &mut S) -> std::io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
             Referrer-Policy: no-referrer\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&self.body).await?;
        stream.flush().await
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The files the agent serves: the demo page and the JS client with its types.
pub fn static_file(path: &str, port: u16) -> Option<Reply> {
    let (content_type, body): (&'static str, &'static str) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", include_str!("../../web/demo.html")),
        "/demo.js" => ("text/javascript; charset=utf-8", include_str!("../../web/demo.js")),
        "/ukey.js" => ("text/javascript; charset=utf-8", include_str!("../../web/ukey.js")),
        "/ukey.d.ts" => ("text/plain; charset=utf-8", include_str!("../../web/ukey.d.ts")),
        _ => return None,
    };
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         connect-src ws://127.0.0.1:{port} ws://localhost:{port} ws://[::1]:{port}; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'none'"
    );
    Some(Reply {
        status: 200,
        content_type,
        body: body.as_bytes().to_vec(),
        extra: vec![("Content-Security-Policy", csp)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_a_head_and_keeps_what_follows() {
        let raw = b"GET /rpc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nOrigin: https://a.example\r\n\r\nextra";
        let mut r = &raw[..];
        let (head, rest) = read_head(&mut r).await.unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/rpc");
        assert_eq!(head.header("origin"), Some("https://a.example"));
        assert_eq!(rest, b"extra");
    }

    #[tokio::test]
    async fn duplicate_headers_count_as_absent() {
        let raw = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\nHost: evil.example:1\r\n\r\n";
        let mut r = &raw[..];
        let (head, _) = read_head(&mut r).await.unwrap();
        assert_eq!(head.header("host"), None);
        assert!(head.repeated("host"));
    }

    #[tokio::test]
    async fn oversized_and_garbage_heads_are_refused() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(vec![b'a'; MAX_HEAD + 10]);
        let mut r = &big[..];
        assert_eq!(read_head(&mut r).await.unwrap_err(), HeadError::TooLarge);
        let mut r = &b"\x16\x03\x01 hello tls\r\n\r\n"[..];
        assert_eq!(read_head(&mut r).await.unwrap_err(), HeadError::Malformed);
    }
}
