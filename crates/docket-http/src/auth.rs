//! Bearer API keys with scopes.
//!
//! Keys are configured as the lowercase hex SHA-256 of the key (`printf %s "$KEY" |
//! sha256sum`), so the configuration holds no secret. Scopes: `ingest` (upload, reprocess),
//! `read` (documents, chunks, events, search) and `admin` (everything, deletion included).
//! Health endpoints are open; the storage webhook is checked by its signature instead; job,
//! queue and cron actions (POST) and deletions need `admin`.
//!
//! The operator dashboard (`/` and `/ui/...`) takes no bearer key: its login form
//! (`/ui/login`) takes an admin key once and keeps a session cookie, the session stored (by its
//! token's hash) in the database, so that it survives restarts and holds across several
//! `serve` processes.
//!
//! Failed authentication (a wrong bearer key, a wrong key in the login form) is limited per
//! client address ([`FailureLimit`]): past the limit, requests that present a key answer `429`
//! with `Retry-After` until the window ends. Requests without a key are not counted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use docket_core::{Driver, SessionInsertParams, SessionRow, SessionStore};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ApiError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Submit and re-process documents.
    Ingest,
    /// Read documents, chunks, events; search.
    Read,
    /// Everything, deletion included.
    Admin,
}

/// One configured key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// A name for logs (never the key).
    pub name: String,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

/// The keys the server accepts.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(String, [u8; 32], Vec<Scope>)>,
    sessions: Sessions,
    limit: FailureLimit,
}

impl ApiKeys {
    /// Validates the configured keys.
    pub fn new(keys: &[ApiKey]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let bytes = hex_32(&k.sha256).ok_or_else(|| {
                format!(
                    "API key {:?}: sha256 must be 64 lowercase hex digits (printf %s KEY | sha256sum)",
                    k.name
                )
            })?;
            if k.scopes.is_empty() {
                return Err(format!("API key {:?} has no scopes", k.name));
            }
            out.push((k.name.clone(), bytes, k.scopes.clone()));
        }
        Ok(Self {
            keys: out,
            sessions: Sessions::default(),
            limit: FailureLimit::default(),
        })
    }

    /// Limits failed authentication per client address as `limit` says.
    pub fn with_failure_limit(mut self, limit: FailureLimit) -> Self {
        self.limit = limit;
        self
    }

    /// Keeps dashboard sessions in `driver`'s database (the router does this).
    pub(crate) fn with_sessions<D: Driver>(mut self, driver: D) -> Self {
        self.sessions = Sessions(Some(Arc::new(DbSessions(driver))));
        self
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The name and scopes of the key `presented`, compared in constant time against every
    /// configured hash.
    fn find(&self, presented: &str) -> Option<(&str, &[Scope])> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (name, hash, scopes) in &self.keys {
            let diff = hash
                .iter()
                .zip(&digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 {
                found = Some((name.as_str(), scopes.as_slice()));
            }
        }
        found
    }
}

fn hex_32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The scope a request needs; `None` for open routes.
fn required(method: &Method, path: &str) -> Option<Scope> {
    // Health checks are open; storage webhooks are checked by their signature instead.
    if path == "/healthz" || path == "/readyz" || path == "/v1/webhooks/storage" {
        return None;
    }
    Some(match (method, path) {
        (&Method::DELETE, _) => Scope::Admin,
        (&Method::POST, p)
            if p.starts_with("/v1/jobs/")
                || p.starts_with("/v1/queues/")
                || p.starts_with("/v1/cron/") =>
        {
            Scope::Admin
        }
        (&Method::POST, p) if p.starts_with("/v1/documents/") && p.ends_with("/cancel") => {
            Scope::Admin
        }
        (&Method::GET, "/v1/audit") => Scope::Admin,
        (&Method::POST, "/v1/reindex") => Scope::Admin,
        (&Method::POST, "/v1/alerts/silences") => Scope::Admin,
        (&Method::POST, "/v1/documents") => Scope::Ingest,
        (&Method::POST, p) if p.ends_with("/reprocess") => Scope::Ingest,
        _ => Scope::Read,
    })
}

/// The middleware: `401` without a valid key, `403` without the scope.
pub(crate) async fn check(State(keys): State<ApiKeys>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/" || path.starts_with("/ui/") {
        return dashboard_check(keys, req, next).await;
    }
    let Some(need) = required(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let client = keys.limit.client(&req);
    if presented.is_some()
        && let Some(wait) = keys.limit.blocked(client)
    {
        return too_many(client, wait, "bearer");
    }
    let found = presented.and_then(|k| keys.find(k));
    if presented.is_some() && found.is_none() {
        keys.limit.failed(client, "bearer");
    }
    let Some((name, scopes)) = found else {
        let mut r = ApiError(
            StatusCode::UNAUTHORIZED,
            "a valid API key is required: Authorization: Bearer <key>".into(),
        )
        .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    let actor = Actor(format!("key:{name}"));
    if !(scopes.contains(&need) || scopes.contains(&Scope::Admin)) {
        tracing::info!(key = name, scope = ?need, "API key lacks the scope");
        return ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "this API key lacks the {} scope",
                format!("{need:?}").to_lowercase()
            ),
        )
        .into_response();
    }
    let mut req = req;
    req.extensions_mut().insert(actor);
    next.run(req).await
}

// ---------------------------------------------------------------------------------------------
// Dashboard sessions.

/// The dashboard's session cookie.
pub(crate) const SESSION_COOKIE: &str = "docket_session";

/// How long a dashboard session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Where dashboard sessions are kept: the database, once the router has attached it (a
/// session is looked up by the SHA-256 of its cookie's token). Without one, no login
/// succeeds.
#[derive(Clone, Default)]
pub struct Sessions(Option<Arc<dyn SessionBackend>>);

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Sessions(database)"
        } else {
            "Sessions(none)"
        })
    }
}

/// The session calls, object-safe.
trait SessionBackend: Send + Sync {
    fn insert(&self, p: SessionInsertParams) -> BoxFuture<'_, docket_core::Result<()>>;
    fn get(&self, token_sha256: String) -> BoxFuture<'_, docket_core::Result<Option<SessionRow>>>;
    fn delete(&self, token_sha256: String) -> BoxFuture<'_, docket_core::Result<bool>>;
    fn delete_for_key(&self, key_name: String) -> BoxFuture<'_, docket_core::Result<u64>>;
}

struct DbSessions<D>(D);

impl<D: Driver> SessionBackend for DbSessions<D> {
    fn insert(&self, p: SessionInsertParams) -> BoxFuture<'_, docket_core::Result<()>> {
        Box::pin(async move { self.0.conn().await?.session_insert(&p).await })
    }
    fn get(&self, token_sha256: String) -> BoxFuture<'_, docket_core::Result<Option<SessionRow>>> {
        Box::pin(async move {
            let mut c = self.0.conn().await?;
            c.session_get(&token_sha256, Utc::now()).await
        })
    }
    fn delete(&self, token_sha256: String) -> BoxFuture<'_, docket_core::Result<bool>> {
        Box::pin(async move { self.0.conn().await?.session_delete(&token_sha256).await })
    }
    fn delete_for_key(&self, key_name: String) -> BoxFuture<'_, docket_core::Result<u64>> {
        Box::pin(async move { self.0.conn().await?.session_delete_for_key(&key_name).await })
    }
}

fn token_sha256(token: &str) -> String {
    docket_pipeline::sha256_hex(token.as_bytes())
}

impl Sessions {
    fn backend(&self) -> docket_core::Result<&Arc<dyn SessionBackend>> {
        self.0
            .as_ref()
            .ok_or_else(|| docket_core::Error::Unavailable("no session store is attached".into()))
    }

    /// A new session of `key_name`: its token, for the cookie.
    async fn create(&self, key_name: &str) -> docket_core::Result<String> {
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Utc::now();
        self.backend()?
            .insert(SessionInsertParams {
                token_sha256: token_sha256(&token),
                key_name: key_name.to_owned(),
                now,
                expires_at: now + chrono::Duration::from_std(SESSION_TTL).expect("a TTL of hours"),
            })
            .await?;
        Ok(token)
    }

    /// The key name of the live session `token`.
    async fn get(&self, token: &str) -> docket_core::Result<Option<String>> {
        let row = self.backend()?.get(token_sha256(token)).await?;
        Ok(row.map(|r| r.key_name))
    }

    async fn remove(&self, token: &str) -> docket_core::Result<()> {
        self.backend()?
            .delete(token_sha256(token))
            .await
            .map(|_| ())
    }

    async fn remove_everywhere(&self, key_name: &str) -> docket_core::Result<u64> {
        self.backend()?.delete_for_key(key_name.to_owned()).await
    }
}

/// How failed authentication is limited: at most `max_failures` per client address within
/// `window`; past it, requests that present a key from that address answer `429` until the
/// window that began with its first failure ends. `max_failures = 0` turns the limit off.
#[derive(Debug, Clone)]
pub struct FailureLimit {
    /// Failures allowed per window. Default 10.
    pub max_failures: u32,
    /// The window. Default one minute.
    pub window: Duration,
    /// Read the client's address from this header's last entry (`x-forwarded-for`, set by a
    /// proxy in front); `None`: the connection's address.
    pub client_header: Option<String>,
    seen: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
}

impl Default for FailureLimit {
    fn default() -> Self {
        Self::new(10, Duration::from_secs(60), None)
    }
}

/// The most client addresses tracked; past it, ended windows are forgotten first.
const TRACKED_CLIENTS: usize = 10_000;

impl FailureLimit {
    /// A limit of `max_failures` per `window`, clients told apart by their connection's
    /// address or by `client_header`.
    pub fn new(max_failures: u32, window: Duration, client_header: Option<String>) -> Self {
        Self {
            max_failures,
            window,
            client_header: client_header.map(|h| h.to_ascii_lowercase()),
            seen: Arc::default(),
        }
    }

    /// No limit.
    pub fn off() -> Self {
        Self::new(0, Duration::from_secs(60), None)
    }

    /// The client's address: `client_header`'s last entry, else (no header: a request that
    /// did not come through the proxy) the connection's.
    fn client(&self, req: &Request) -> Option<IpAddr> {
        let forwarded = self.client_header.as_ref().and_then(|h| {
            req.headers()
                .get_all(h.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|v| v.trim().parse::<IpAddr>().ok())
                .next_back()
        });
        forwarded.or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
    }

    /// How long `client` must wait, while it is over the limit.
    fn blocked(&self, client: Option<IpAddr>) -> Option<Duration> {
        let ip = client.filter(|_| self.max_failures > 0)?;
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (failures, since) = seen.get(&ip)?;
        let ends = *since + self.window;
        let now = Instant::now();
        (*failures >= self.max_failures && ends > now).then(|| ends - now)
    }

    /// Counts a failure of `client`.
    fn failed(&self, client: Option<IpAddr>, via: &'static str) {
        metrics::counter!("docket_auth_failures_total", "via" => via).increment(1);
        let Some(ip) = client.filter(|_| self.max_failures > 0) else {
            return;
        };
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= TRACKED_CLIENTS {
            let window = self.window;
            seen.retain(|_, (_, since)| *since + window > now);
        }
        let entry = seen.entry(ip).or_insert((0, now));
        if entry.1 + self.window <= now {
            *entry = (0, now);
        }
        entry.0 += 1;
        if entry.0 == self.max_failures {
            tracing::warn!(
                client = %ip,
                failures = entry.0,
                window_secs = self.window.as_secs(),
                via,
                "too many failed authentications: refusing this address until the window ends"
            );
        }
    }
}

/// `429` with `Retry-After`, logged and counted.
fn too_many(client: Option<IpAddr>, wait: Duration, via: &'static str) -> Response {
    metrics::counter!("docket_auth_throttled_total", "via" => via).increment(1);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    tracing::info!(
        client = ?client,
        retry_after_secs = secs,
        via,
        "authentication refused: too many failures from this address"
    );
    let mut r = ApiError(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed authentications from this address; try again in {secs} s"),
    )
    .into_response();
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&secs.to_string()).expect("digits"),
    );
    r
}

/// Who made a request, for the audit trail: `key:<name>` for a bearer key,
/// `dashboard:<name>` for a dashboard session; a request extension set by the key check.
#[derive(Debug, Clone)]
pub(crate) struct Actor(pub String);

/// Who is logged in to the dashboard; a request extension set by the key check. Without it
/// (no keys configured: a loopback-only server) the dashboard is open and shows no logout.
#[derive(Debug, Clone)]
pub(crate) struct DashboardUser {
    /// The name of the key that logged in.
    pub(crate) key_name: String,
}

fn session_token(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// `Set-Cookie` for `token`, or one that clears the cookie. `Secure` is always set: browsers
/// (Chromium and Firefox) accept secure cookies from `http://localhost` and `http://127.0.0.1`,
/// and anything else should sit behind TLS.
fn session_cookie(token: Option<&str>) -> HeaderValue {
    let v = match token {
        Some(t) => format!(
            "{SESSION_COOKIE}={t}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
            SESSION_TTL.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"),
    };
    HeaderValue::from_str(&v).expect("a cookie of hex digits is a valid header")
}

fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).expect("a fixed path"),
        )],
    )
        .into_response()
}

/// The dashboard's part of the key check: the login form and the assets are open; `POST
/// /ui/login` trades an admin key for a session; `POST /ui/logout` ends it; every other page
/// needs a live session of a key that still has the admin scope (pages redirect to the login
/// form, anything else gets `401`).
async fn dashboard_check(keys: ApiKeys, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if path.starts_with("/ui/assets/") || (path == "/ui/login" && method == Method::GET) {
        req.extensions_mut().insert(LoginRequired);
        return next.run(req).await;
    }
    if path == "/ui/login" && method == Method::POST {
        if !crate::dashboard::same_origin(&req) {
            return ApiError(StatusCode::FORBIDDEN, "cross-site request refused".into())
                .into_response();
        }
        let client = keys.limit.client(&req);
        if let Some(wait) = keys.limit.blocked(client) {
            return too_many(client, wait, "login");
        }
        let body = match axum::body::to_bytes(req.into_body(), 16 * 1024).await {
            Ok(b) => b,
            Err(_) => return see_other("/ui/login?error=invalid"),
        };
        let key = form_urlencoded_value(&body, "key").unwrap_or_default();
        return match keys.find(key.trim()) {
            Some((name, scopes)) if scopes.contains(&Scope::Admin) => {
                let token = match keys.sessions.create(name).await {
                    Ok(t) => t,
                    Err(e) => return sessions_unavailable(e),
                };
                tracing::info!(key = name, "dashboard login");
                let mut r = see_other("/");
                r.headers_mut()
                    .insert(header::SET_COOKIE, session_cookie(Some(&token)));
                r
            }
            Some((name, _)) => {
                tracing::info!(key = name, "dashboard login refused: the key lacks admin");
                see_other("/ui/login?error=scope")
            }
            None => {
                keys.limit.failed(client, "login");
                tracing::info!(client = ?client, "dashboard login refused: no such key");
                see_other("/ui/login?error=invalid")
            }
        };
    }
    let token = session_token(&req);
    let user = match &token {
        Some(t) => match keys.sessions.get(t).await {
            Ok(user) => user,
            Err(e) => return sessions_unavailable(e),
        },
        None => None,
    }
    .filter(|name| {
        keys.keys
            .iter()
            .any(|(n, _, scopes)| n == name && scopes.contains(&Scope::Admin))
    });
    if path == "/ui/logout" && method == Method::POST {
        if let Some(t) = &token
            && crate::dashboard::same_origin(&req)
        {
            // `everywhere=1` ends every session of the key, in every browser.
            let everywhere = req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|kv| kv == "everywhere=1"));
            let ended = match (&user, everywhere) {
                (Some(name), true) => keys.sessions.remove_everywhere(name).await.map(|n| {
                    tracing::info!(key = name, sessions = n, "dashboard logout everywhere");
                }),
                _ => keys.sessions.remove(t).await,
            };
            if let Err(e) = ended {
                return sessions_unavailable(e);
            }
        }
        let mut r = see_other("/ui/login");
        r.headers_mut()
            .insert(header::SET_COOKIE, session_cookie(None));
        return r;
    }
    match user {
        Some(key_name) => {
            req.extensions_mut().insert(LoginRequired);
            req.extensions_mut()
                .insert(Actor(format!("dashboard:{key_name}")));
            req.extensions_mut().insert(DashboardUser { key_name });
            next.run(req).await
        }
        None if method == Method::GET => see_other("/ui/login"),
        None => ApiError(
            StatusCode::UNAUTHORIZED,
            "log in to the dashboard at /ui/login".into(),
        )
        .into_response(),
    }
}

fn sessions_unavailable(e: docket_core::Error) -> Response {
    tracing::warn!(error = %e, "dashboard sessions unavailable");
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("dashboard sessions are unavailable: {e}"),
    )
    .into_response()
}

/// Marks dashboard requests of a server with keys (the login form is only shown then).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoginRequired;

/// The value of `name` in an `application/x-www-form-urlencoded` body.
pub(crate) fn form_urlencoded_value(body: &[u8], name: &str) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
