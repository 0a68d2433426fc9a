//! Fetching documents by URL, guarded against server-side request forgery.
//!
//! A URL given to docket (by a user, or named by a storage event) must not make docket reach
//! into the network it runs in: cloud metadata endpoints, databases, admin ports. So by
//! default every address the fetch would connect to is checked — the URL's own host when it is
//! an address, and every address a name resolves to, at connection time (a name that resolves
//! to a public address when checked and a private one when used gains nothing), on every
//! redirect — and private, loopback, link-local, shared, documentation, multicast and
//! reserved ranges are refused. Redirects are bounded in number and limited to http(s);
//! the body is bounded in size (the declared length is checked first, then the bytes as they
//! arrive) and the whole fetch in time. Proxies from the environment are ignored: a proxy
//! would resolve the name itself, past the guard.
//!
//! [`FetchConfig::allow_private`] turns the address check off, for deployments that fetch
//! from their own network on purpose (and for tests, which may only use loopback).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use docket_notify::guard::{self, GuardError, GuardedResolver, TooManyRedirects};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// The address guard, shared with outbound webhooks (see [`docket_notify::guard`]).
pub use docket_notify::guard::{Resolver, SystemResolver, is_public};

/// How URLs are fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Allow private, loopback and link-local targets. Off by default (SSRF guard).
    pub allow_private: bool,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// The whole fetch, connection to last byte, in seconds.
    pub timeout_secs: u64,
    /// Largest body accepted, in bytes (the upload limit, unless set).
    pub max_bytes: Option<u64>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_redirects: 5,
            timeout_secs: 30,
            max_bytes: None,
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not an absolute http(s) URL.
    #[error("bad URL: {0}")]
    BadUrl(String),
    /// The guard refused a target.
    #[error("refused: {0}")]
    Refused(String),
    /// The body is larger than the limit.
    #[error("the document at the URL is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The fetch took longer than the limit.
    #[error("fetching the URL timed out after {0:?}")]
    Timeout(Duration),
    /// The server answered with an error status.
    #[error("the server answered {0}")]
    Status(u16),
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// No connection, or the connection broke.
    #[error("could not fetch the URL: {0}")]
    Unreachable(String),
}

impl FetchError {
    /// Whether trying again later may succeed (the server was down, slow or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Unreachable(_) => true,
            Self::Status(s) => *s == 408 || *s == 429 || *s >= 500,
            _ => false,
        }
    }
}

/// What a fetch brought back.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body.
    pub bytes: Bytes,
    /// A file name: from `Content-Disposition`, else the URL's last path segment.
    pub filename: Option<String>,
    /// The `Content-Type` the server declared.
    pub content_type: Option<String>,
    /// The URL finally fetched, after redirects.
    pub final_url: String,
}

/// Fetches URLs within the configured bounds. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: FetchConfig,
    max_bytes: u64,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher with the system resolver. `default_max_bytes` applies when the config sets
    /// no limit of its own.
    pub fn new(config: FetchConfig, default_max_bytes: u64) -> Result<Self, FetchError> {
        Self::with_resolver(config, default_max_bytes, Arc::new(SystemResolver))
    }

    /// A fetcher that resolves names with `resolver` (tests point names at addresses without
    /// touching the network).
    pub fn with_resolver(
        config: FetchConfig,
        default_max_bytes: u64,
        resolver: Arc<dyn Resolver>,
    ) -> Result<Self, FetchError> {
        let allow_private = config.allow_private;
        let max_redirects = config.max_redirects;
        let policy = guard::redirect_policy(max_redirects, allow_private);
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(policy)
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(config.timeout_secs.clamp(1, 10)))
            .user_agent(concat!("docket/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver::new(resolver, allow_private)))
            .build()
            .map_err(|e| FetchError::Unreachable(format!("cannot build the HTTP client: {e}")))?;
        let max_bytes = config.max_bytes.unwrap_or(default_max_bytes);
        Ok(Self {
            client,
            config,
            max_bytes,
        })
    }

    /// The limit on one whole fetch.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_secs.max(1))
    }

    /// The largest body accepted.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Fetches `url` with `GET`, adding `headers` (an authorization header for a storage
    /// service, say).
    pub async fn get(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Fetched, FetchError> {
        let parsed = parse_url(url)?;
        check_url(&parsed, self.config.allow_private)?;
        let timeout = Duration::from_secs(self.config.timeout_secs.max(1));
        let mut req = self.client.get(parsed);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(|e| classify(e, timeout))?;
        if !resp.status().is_success() {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(FetchError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let final_url = resp.url().to_string();
        let content_type = header(&resp, reqwest::header::CONTENT_TYPE);
        let filename = header(&resp, reqwest::header::CONTENT_DISPOSITION)
            .as_deref()
            .and_then(disposition_filename)
            .or_else(|| last_segment(resp.url()));
        let mut body = BytesMut::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(e, timeout))?;
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(FetchError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            bytes: body.freeze(),
            filename,
            content_type,
            final_url,
        })
    }
}

fn parse_url(url: &str) -> Result<reqwest::Url, FetchError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| FetchError::BadUrl(format!("{url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::BadUrl(format!(
            "{url:?}: only http and https URLs can be fetched"
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(FetchError::BadUrl(format!("{url:?} names no host")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(FetchError::BadUrl(format!(
            "{url:?}: credentials in the URL are not accepted"
        )));
    }
    Ok(parsed)
}

/// The checks a URL must pass before any connection: scheme, and the host when it is an
/// address (names are checked when resolved).
fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<(), FetchError> {
    guard::check_url_for(url, allow_private, "fetching from it").map_err(|e| match e {
        GuardError::BadUrl(m) => FetchError::BadUrl(m),
        GuardError::Refused(m) => FetchError::Refused(m),
    })
}

fn classify(e: reqwest::Error, timeout: Duration) -> FetchError {
    if let Some(r) = guard::refused_in(&e) {
        return FetchError::Refused(r.0.clone());
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(t) = err.downcast_ref::<TooManyRedirects>() {
            return FetchError::TooManyRedirects(t.0);
        }
        source = err.source();
    }
    if e.is_timeout() {
        FetchError::Timeout(timeout)
    } else {
        // The chain carries the useful part ("connection refused").
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(err) = source {
            msg.push_str(": ");
            msg.push_str(&err.to_string());
            source = err.source();
        }
        FetchError::Unreachable(msg)
    }
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `attachment; filename="report.pdf"` → `report.pdf` (the plain form; `filename*` is
/// preferred when present and UTF-8).
fn disposition_filename(v: &str) -> Option<String> {
    let mut plain = None;
    for part in v.split(';').map(str::trim) {
        if let Some(rest) = part.strip_prefix("filename*=") {
            if let Some(enc) = rest
                .strip_prefix("UTF-8''")
                .or_else(|| rest.strip_prefix("utf-8''"))
            {
                let decoded = percent_decode(enc);
                if !decoded.is_empty() {
                    return Some(decoded);
                }
            }
        } else if let Some(rest) = part.strip_prefix("filename=") {
            let name = rest.trim_matches('"');
            if !name.is_empty() {
                plain = Some(name.to_owned());
            }
        }
    }
    plain
}

fn last_segment(url: &reqwest::Url) -> Option<String> {
    url.path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
        .map(percent_decode)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_ranges() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} is not public");
        }
    }

    #[test]
    fn urls_are_checked_before_any_connection() {
        let check = |u: &str| check_url(&parse_url(u).unwrap(), false);
        assert!(check("https://example.com/a.pdf").is_ok());
        assert!(matches!(
            check("http://127.0.0.1:8080/"),
            Err(FetchError::Refused(_))
        ));
        assert!(matches!(
            check("http://[::1]/"),
            Err(FetchError::Refused(_))
        ));
        assert!(matches!(
            check("http://169.254.169.254/latest/meta-data/"),
            Err(FetchError::Refused(_))
        ));
        assert!(matches!(
            check("http://localhost/"),
            Err(FetchError::Refused(_))
        ));
        assert!(matches!(
            check("http://api.localhost./"),
            Err(FetchError::Refused(_))
        ));
        // Decimal and hex spellings of loopback are normalised by the URL parser.
        assert!(matches!(
            check("http://2130706433/"),
            Err(FetchError::Refused(_))
        ));
        assert!(matches!(
            check("http://0x7f.1/"),
            Err(FetchError::Refused(_))
        ));
        assert!(check_url(&parse_url("http://127.0.0.1/").unwrap(), true).is_ok());
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "example.com",
            "http://user:pw@example.com/",
        ] {
            assert!(
                matches!(parse_url(bad), Err(FetchError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn file_names_from_headers_and_urls() {
        assert_eq!(
            disposition_filename(r#"attachment; filename="report.pdf""#).as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            disposition_filename("attachment; filename=a.txt; filename*=UTF-8''na%C3%AFve.txt")
                .as_deref(),
            Some("naïve.txt")
        );
        assert_eq!(disposition_filename("inline"), None);
        let u = reqwest::Url::parse("https://h/docs/my%20file.md?x=1").unwrap();
        assert_eq!(last_segment(&u).as_deref(), Some("my file.md"));
        let u = reqwest::Url::parse("https://h/").unwrap();
        assert_eq!(last_segment(&u), None);
    }
}
