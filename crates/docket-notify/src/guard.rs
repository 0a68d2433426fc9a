//! The guard against server-side request forgery, shared by every outbound HTTP request docket
//! makes on behalf of a user: fetching a document by URL, and posting a completion webhook to a
//! document's callback URL.
//!
//! A URL given to docket must not make docket reach into the network it runs in: cloud
//! metadata endpoints, databases, admin ports. So by default every address a request would
//! connect to is checked — the URL's own host when it is an address ([`check_url`]), and every
//! address a name resolves to, at connection time ([`GuardedResolver`]: a name that resolves to
//! a public address when checked and a private one when used gains nothing), and every redirect
//! hop ([`check_redirect`], [`redirect_policy`]) — and private, loopback, link-local, shared,
//! documentation, multicast and reserved ranges are refused ([`is_public`]). Clients built for
//! guarded requests must also ignore proxies from the environment (`.no_proxy()`): a proxy
//! would resolve the name itself, past the guard.
//!
//! `allow_private` turns the address check off, for deployments that reach their own network
//! on purpose (and for tests, which may only use loopback).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future (the same type as `futures::future::BoxFuture`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Resolves host names to addresses (the system resolver, unless a test provides one).
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `host`.
    fn lookup(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// Why the guard turned a URL down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Not a usable absolute URL (no host).
    #[error("bad URL: {0}")]
    BadUrl(String),
    /// The target is not allowed: a non-http(s) scheme, or a private, loopback or reserved
    /// address or name.
    #[error("refused: {0}")]
    Refused(String),
}

/// The error a guarded client's resolver or redirect policy fails with when it refuses a
/// target; find it in a `reqwest::Error`'s source chain with [`refused_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedTarget(pub String);

impl std::fmt::Display for RefusedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedTarget {}

/// The error a guarded redirect policy fails with after too many hops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRedirects(pub usize);

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} redirects", self.0)
    }
}

impl std::error::Error for TooManyRedirects {}

/// The refusal, if any, in `error`'s source chain.
pub fn refused_in<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e RefusedTarget> {
    let mut source = Some(error);
    while let Some(err) = source {
        if let Some(r) = err.downcast_ref::<RefusedTarget>() {
            return Some(r);
        }
        source = err.source();
    }
    None
}

/// The resolver a guarded `reqwest` client calls at connection time: drops refused addresses,
/// and fails with [`RefusedTarget`] when none is left.
pub struct GuardedResolver {
    inner: Arc<dyn Resolver>,
    allow_private: bool,
}

impl std::fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

impl GuardedResolver {
    /// Guards `inner`'s answers (unless `allow_private`).
    pub fn new(inner: Arc<dyn Resolver>, allow_private: bool) -> Self {
        Self {
            inner,
            allow_private,
        }
    }

    /// The addresses of `host` that may be connected to, or why none may.
    pub async fn resolve_allowed(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let ips = self
            .inner
            .lookup(host)
            .await
            .map_err(ResolveError::Lookup)?;
        let allowed: Vec<IpAddr> = ips
            .iter()
            .copied()
            .filter(|ip| self.allow_private || is_public(*ip))
            .collect();
        if allowed.is_empty() {
            let why = if ips.is_empty() {
                format!("{host} has no address")
            } else {
                format!(
                    "{host} resolves to {}, a {} address",
                    ips[0],
                    describe(ips[0])
                )
            };
            return Err(ResolveError::Refused(RefusedTarget(why)));
        }
        Ok(allowed)
    }
}

/// Why [`GuardedResolver::resolve_allowed`] gave no address.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The lookup itself failed.
    #[error("{0}")]
    Lookup(std::io::Error),
    /// Every address was refused (or there was none).
    #[error("{0}")]
    Refused(RefusedTarget),
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let this = Self {
            inner: self.inner.clone(),
            allow_private: self.allow_private,
        };
        Box::pin(async move {
            match this.resolve_allowed(&host).await {
                Ok(ips) => {
                    let addrs: Vec<SocketAddr> =
                        ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
                Err(ResolveError::Lookup(e)) => Err(Box::new(e) as _),
                Err(ResolveError::Refused(r)) => Err(Box::new(r) as _),
            }
        })
    }
}

/// The address in a URL's host, when it is one (`[::1]`, `127.0.0.1`; the URL parser has
/// already turned forms such as `2130706433` and `0x7f000001` into dotted quads).
fn host_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// The checks a URL must pass before any connection: scheme, and the host when it is an
/// address or a loopback name (other names are checked when resolved, by
/// [`GuardedResolver`]).
pub fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<(), GuardError> {
    check_url_for(url, allow_private, "connecting to it")
}

/// [`check_url`], with `what` naming the action in the refusal ("fetching from it").
pub fn check_url_for(
    url: &reqwest::Url,
    allow_private: bool,
    what: &str,
) -> Result<(), GuardError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(GuardError::Refused(format!(
            "{url}: only http and https URLs are allowed"
        )));
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(GuardError::BadUrl(format!("{url} names no host")));
    };
    let Some(ip) = host_ip(url) else {
        // "localhost" and its subdomains never leave the machine, whatever DNS says.
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if !allow_private && (name == "localhost" || name.ends_with(".localhost")) {
            return Err(GuardError::Refused(format!(
                "{name} is a loopback name; {what} is not allowed"
            )));
        }
        return Ok(());
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(GuardError::Refused(format!(
            "{ip} is a {} address; {what} is not allowed",
            describe(ip)
        )))
    }
}

/// Checks one redirect hop: at most `max_redirects` hops (`previous` is the number of URLs
/// already visited), and the hop's URL must pass [`check_url`].
pub fn check_redirect(
    hop: &reqwest::Url,
    previous: usize,
    max_redirects: usize,
    allow_private: bool,
) -> Result<(), RedirectError> {
    if previous > max_redirects {
        return Err(RedirectError::TooMany(TooManyRedirects(max_redirects)));
    }
    check_url(hop, allow_private).map_err(|e| {
        RedirectError::Refused(RefusedTarget(match e {
            GuardError::BadUrl(m) | GuardError::Refused(m) => m,
        }))
    })
}

/// Why a redirect hop was not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// More hops than allowed.
    #[error("{0}")]
    TooMany(TooManyRedirects),
    /// The hop's target is refused.
    #[error("{0}")]
    Refused(RefusedTarget),
}

/// A `reqwest` redirect policy that follows at most `max_redirects` hops, each checked with
/// [`check_redirect`].
pub fn redirect_policy(max_redirects: usize, allow_private: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        match check_redirect(
            attempt.url(),
            attempt.previous().len(),
            max_redirects,
            allow_private,
        ) {
            Ok(()) => attempt.follow(),
            Err(RedirectError::TooMany(t)) => attempt.error(t),
            Err(RedirectError::Refused(r)) => attempt.error(r),
        }
    })
}

/// What kind of non-public address `ip` is, for messages.
pub fn describe(ip: IpAddr) -> &'static str {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    if let Some(v4) = v4 {
        let [a, b, ..] = v4.octets();
        return match (a, b) {
            (127, _) => "loopback",
            (10, _) | (192, 168) => "private",
            (172, b) if (16..32).contains(&b) => "private",
            (169, 254) => "link-local",
            (100, b) if (64..128).contains(&b) => "shared (CGNAT)",
            (0, _) => "unspecified",
            (a, _) if a >= 224 => "multicast or reserved",
            _ if is_public_v4(v4) => "public",
            _ => "reserved",
        };
    }
    let IpAddr::V6(v6) = ip else { unreachable!() };
    let s = v6.segments();
    if v6.is_loopback() {
        "loopback"
    } else if v6.is_unspecified() {
        "unspecified"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "private (unique local)"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if is_public_v6(v6) {
        "public"
    } else {
        "reserved"
    }
}

/// Whether an address is on the public internet: not private, loopback, link-local, shared
/// (CGNAT), documentation, benchmarking, multicast, reserved or unspecified; IPv6 forms that
/// embed an IPv4 address are judged by it.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || s[0] & 0xfe00 == 0xfc00 // unique local
        || s[0] & 0xffc0 == 0xfe80 // link-local
        || s[0] & 0xffc0 == 0xfec0 // site-local (deprecated)
        || s[0] & 0xff00 == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4].iter().all(|x| *x == 0)) // discard
        || s[..6].iter().all(|x| *x == 0)) // IPv4-compatible (deprecated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn url_check_refuses_addresses_and_loopback_names() {
        for u in [
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://localhost/",
            "http://api.localhost./",
            "http://0.0.0.0/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            let e = check_url(&url(u), false).unwrap_err();
            assert!(matches!(e, GuardError::Refused(_)), "{u}: {e:?}");
            assert!(check_url(&url(u), true).is_ok(), "{u}");
        }
        let e = check_url(&url("http://10.0.0.1/"), false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("refused: 10.0.0.1 is a private address"),
            "{e}"
        );
        assert!(check_url(&url("http://8.8.8.8/"), false).is_ok());
        assert!(check_url(&url("https://example.com/"), false).is_ok());
        assert!(matches!(
            check_url(&url("ftp://example.com/"), true),
            Err(GuardError::Refused(_))
        ));
    }

    #[test]
    fn redirect_hops_are_checked() {
        // A hop from an allowed origin to a refused one is refused, whatever the origin.
        assert!(check_redirect(&url("https://example.com/next"), 1, 5, false).is_ok());
        for hop in [
            "http://127.0.0.1:8080/admin",
            "http://localhost/",
            "http://169.254.169.254/",
            "http://[fd00::1]/",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(
                    check_redirect(&url(hop), 1, 5, false),
                    Err(RedirectError::Refused(_))
                ),
                "{hop}"
            );
        }
        assert!(check_redirect(&url("http://127.0.0.1/"), 1, 5, true).is_ok());
        assert_eq!(
            check_redirect(&url("https://example.com/"), 6, 5, false),
            Err(RedirectError::TooMany(TooManyRedirects(5)))
        );
    }

    #[test]
    fn descriptions() {
        for (ip, what) in [
            ("10.0.0.1", "private"),
            ("127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("fd00::1", "private (unique local)"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
        ] {
            assert_eq!(describe(ip.parse().unwrap()), what, "{ip}");
        }
    }
}
