//! Bearer API keys with scopes.
//!
//! Keys are configured as the lowercase hex SHA-256 of the key (`printf %s "$KEY" |
//! sha256sum`), so the configuration holds no secret. Scopes: `ingest` (upload, reprocess),
//! `read` (documents, chunks, events, search) and `admin` (everything, deletion included).
//! Health endpoints are open; the storage webhook is checked by its signature instead; job,
//! queue and cron actions (POST) and deletions need `admin`.
//!
//! The operator dashboard (`/` and `/ui/...`) takes no bearer key: its login form
//! (`/ui/login`) takes an admin key once and keeps a session cookie ([`Sessions`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
        })
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
    let Some((name, scopes)) = presented.and_then(|k| keys.find(k)) else {
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

/// Dashboard sessions, in memory (a restart logs everyone out): a random 32-byte token, hex
/// in the cookie, mapped to the name of the admin key that logged in and the session's end.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    map: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl Sessions {
    fn create(&self, key_name: &str) -> String {
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, end)| *end > now);
        map.insert(token.clone(), (key_name.to_owned(), now + SESSION_TTL));
        token
    }

    fn get(&self, token: &str) -> Option<String> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(token)
            .filter(|(_, end)| *end > Instant::now())
            .map(|(name, _)| name.clone())
    }

    fn remove(&self, token: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(token);
    }
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
        let body = match axum::body::to_bytes(req.into_body(), 16 * 1024).await {
            Ok(b) => b,
            Err(_) => return see_other("/ui/login?error=invalid"),
        };
        let key = form_urlencoded_value(&body, "key").unwrap_or_default();
        return match keys.find(key.trim()) {
            Some((name, scopes)) if scopes.contains(&Scope::Admin) => {
                let token = keys.sessions.create(name);
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
            None => see_other("/ui/login?error=invalid"),
        };
    }
    let token = session_token(&req);
    let user = token
        .as_deref()
        .and_then(|t| keys.sessions.get(t))
        .filter(|name| {
            keys.keys
                .iter()
                .any(|(n, _, scopes)| n == name && scopes.contains(&Scope::Admin))
        });
    if path == "/ui/logout" && method == Method::POST {
        if let Some(t) = &token
            && crate::dashboard::same_origin(&req)
        {
            keys.sessions.remove(t);
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
