//! Bearer API keys with scopes.
//!
//! Keys are configured as the lowercase hex SHA-256 of the key (`printf %s "$KEY" |
//! sha256sum`), so the configuration holds no secret. Scopes: `ingest` (upload, reprocess),
//! `read` (documents, chunks, events, search) and `admin` (everything, deletion included).
//! Health endpoints are open; the storage webhook is checked by its signature instead; job,
//! queue and cron actions (POST) and deletions need `admin`.

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
        Ok(Self { keys: out })
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
        (&Method::POST, "/v1/documents") => Scope::Ingest,
        (&Method::POST, p) if p.ends_with("/reprocess") => Scope::Ingest,
        _ => Scope::Read,
    })
}

/// The middleware: `401` without a valid key, `403` without the scope.
pub(crate) async fn check(State(keys): State<ApiKeys>, req: Request, next: Next) -> Response {
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
    if !(scopes.contains(&need) || scopes.contains(&Scope::Admin)) {
        tracing::info!(key = name, scope = ?need, "API key lacks the scope");
        return ApiError(
            StatusCode::FORBIDDEN,
            format!("this API key lacks the {need:?} scope").to_lowercase(),
        )
        .into_response();
    }
    next.run(req).await
}
