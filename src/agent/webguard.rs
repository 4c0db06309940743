//! The checks on every HTTP request and WebSocket upgrade: `Host` must name a loopback host with
//! our port (against DNS rebinding), and `Origin` must be a well-formed web origin the agent is
//! willing to pair: https, or http on a loopback host listed as a development origin.
//!
//! Pure functions, so each refusal is unit-tested here and attack-tested over real sockets in
//! `tests/agent_attacks.rs`.

use std::fmt;

/// A web origin in canonical form: lower-case scheme and host, default port omitted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebOrigin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl WebOrigin {
    /// Parses an `Origin` header value (`scheme://host[:port]`, nothing else).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("null") {
            return Err("an opaque (`null`) origin cannot pair; open the page from an https site".into());
        }
        let (scheme, rest) =
            text.split_once("://").ok_or_else(|| format!("`{}` is not an origin (scheme://host)", clip(text)))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(format!("the `{}` scheme cannot pair; only https pages can", clip(&scheme)));
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', '\\']) || rest.chars().any(|c| c.is_whitespace()) {
            return Err(format!("`{}` is not an origin (scheme://host[:port] only)", clip(text)));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| format!("`{}` has a bad host or port", clip(text)))?;
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = port.filter(|p| *p != default_port);
        Ok(WebOrigin { scheme, host: host.to_ascii_lowercase(), port })
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Lower-case host; IPv6 in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// True for `localhost`, `127.0.0.1` (any 127/8 address) and `[::1]`.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }
}

impl fmt::Display for WebOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Which http origins may pair besides https ones.
#[derive(Debug, Clone, Default)]
pub struct OriginRules {
    /// The agent's own origins (`http://127.0.0.1:PORT`, ...): its demo page.
    pub own: Vec<WebOrigin>,
    /// Listed development origins.
    pub dev: Vec<WebOrigin>,
    /// Any http loopback origin (development mode).
    pub any_http_loopback: bool,
}

impl OriginRules {
    /// The rules for an agent on `port`, with configured development origins.
    pub fn new(port: u16, dev_origins: &[String], any_http_loopback: bool) -> Result<Self, String> {
        let own = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|h| WebOrigin::parse(&format!("http://{h}:{port}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut dev = Vec::new();
        for text in dev_origins {
            let o = WebOrigin::parse(text).map_err(|e| format!("development origin {text}: {e}"))?;
            if o.scheme == "http" && !o.is_loopback() {
                return Err(format!(
                    "development origin {text}: http origins must be on a loopback host (localhost, 127.0.0.1, [::1])"
                ));
            }
            dev.push(o);
        }
        Ok(OriginRules { own, dev, any_http_loopback })
    }

    /// Checks an `Origin` header: present, not `null`, https or an allowed http loopback origin.
    /// Pairing is checked afterwards, per request.
    pub fn admit(&self, origin: Option<&str>) -> Result<WebOrigin, String> {
        let text = origin.ok_or("no Origin header; only web pages (which always send one) may connect")?;
        let origin = WebOrigin::parse(text)?;
        if origin.scheme == "https" {
            return Ok(origin);
        }
        if self.own.contains(&origin) || self.dev.contains(&origin) || (self.any_http_loopback && origin.is_loopback())
        {
            return Ok(origin);
        }
        Err(format!(
            "{origin} is plain http; only https pages may pair (add it to `dev_origins` in the [agent] config to develop locally)"
        ))
    }
}

/// Checks a `Host` header: a loopback name with exactly our port. A rebinding attack arrives with
/// the attacker's host name here, so it is refused before anything else happens.
pub fn check_host(host: Option<&str>, port: u16) -> Result<(), String> {
    let host = host.ok_or("no Host header")?.trim();
    let (name, got_port) = split_host_port(host).ok_or_else(|| format!("bad Host header `{}`", clip(host)))?;
    if !is_loopback_host(&name.to_ascii_lowercase()) {
        return Err(format!(
            "Host `{}` is not a loopback name; the agent answers only 127.0.0.1, localhost and [::1]",
            clip(host)
        ));
    }
    if got_port != Some(port) {
        return Err(format!("Host `{}` does not name this agent's port {port}", clip(host)));
    }
    Ok(())
}

fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" || host == "[::1]" {
        return true;
    }
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// Digits only, no sign, no leading zero (so each port has exactly one spelling).
fn is_canonical_port(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'))
}

/// Splits `host[:port]` and `[v6][:port]`; `None` for anything malformed.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{v6}]"), port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (text.to_string(), None),
        }
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return None;
    }
    if !host.starts_with('[') && !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return None;
    }
    let port = match port {
        None => None,
        // Canonical decimal only: browsers never send `:017443`, and a header that names our
        // port in another spelling is not one we should have to reason about.
        Some(p) if is_canonical_port(p) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

/// Cuts attacker-supplied text for log and error messages.
fn clip(text: &str) -> String {
    let mut s: String = text.chars().take(80).filter(|c| !c.is_control()).collect();
    if text.chars().count() > 80 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_canonical() {
        assert_eq!(WebOrigin::parse("HTTPS://Bank.Example:443").unwrap().to_string(), "https://bank.example");
        assert_eq!(WebOrigin::parse("https://a.example:8443").unwrap().to_string(), "https://a.example:8443");
        assert_eq!(WebOrigin::parse("http://[::1]:80").unwrap().to_string(), "http://[::1]");
    }

    #[test]
    fn bad_origins_are_refused() {
        for bad in [
            "null",
            "",
            "file://",
            "chrome-extension://abc",
            "https://a.example/path",
            "https://user@a.example",
            "https://a.example:99999",
            "https://a.example:",
            "https://a b",
            "ws://127.0.0.1",
            "https://[zz]",
        ] {
            assert!(WebOrigin::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn admission_rules() {
        let rules = OriginRules::new(24815, &["http://localhost:8080".into()], false).unwrap();
        assert!(rules.admit(None).is_err());
        assert!(rules.admit(Some("null")).is_err());
        assert!(rules.admit(Some("https://evil.example")).is_ok(), "https admitted (pairing decides)");
        assert!(rules.admit(Some("http://evil.example")).is_err());
        assert!(rules.admit(Some("http://localhost:8080")).is_ok());
        assert!(rules.admit(Some("http://localhost:8081")).is_err());
        assert!(rules.admit(Some("http://127.0.0.1:24815")).is_ok(), "own demo page");
        let dev = OriginRules::new(1, &[], true).unwrap();
        assert!(dev.admit(Some("http://127.0.0.1:5000")).is_ok());
        assert!(dev.admit(Some("http://10.0.0.1:5000")).is_err());
        assert!(OriginRules::new(1, &["http://intranet.example".into()], false).is_err());
    }

    #[test]
    fn host_must_be_loopback_with_our_port() {
        assert!(check_host(Some("127.0.0.1:24815"), 24815).is_ok());
        assert!(check_host(Some("LOCALHOST:24815"), 24815).is_ok());
        assert!(check_host(Some("[::1]:24815"), 24815).is_ok());
        assert!(check_host(Some("evil.example:24815"), 24815).is_err());
        assert!(check_host(Some("127.0.0.1"), 24815).is_err());
        assert!(check_host(Some("127.0.0.1:80"), 24815).is_err());
        assert!(check_host(Some("192.168.1.5:24815"), 24815).is_err());
        assert!(check_host(Some("localhost.evil.example:24815"), 24815).is_err());
        assert!(check_host(None, 24815).is_err());
    }

    /// Found by the `web_origin` fuzz target in CI: `127.1.0.11:017443` was accepted as port
    /// 17443. A port has one spelling; anything else is refused, in `Host` and in `Origin`.
    #[test]
    fn ports_with_leading_zeros_are_refused() {
        assert!(check_host(Some("127.1.0.11:017443"), 17443).is_err());
        assert!(check_host(Some("localhost:+24815"), 24815).is_err());
        assert!(WebOrigin::parse("http://localhost:03000").is_err());
        assert!(WebOrigin::parse("http://localhost:3000").is_ok());
    }
}
