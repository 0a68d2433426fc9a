//! Dashboard sessions, stored so that they survive restarts and work across several `serve`
//! processes. A session is kept by its token's SHA-256 (the token itself, in the browser's
//! cookie, is never stored).

use chrono::{DateTime, Utc};

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Lowercase hex SHA-256 of the session token.
    pub token_sha256: String,
    /// The name of the API key that logged in.
    pub key_name: String,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// Arguments of [`crate::SessionStore::session_insert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInsertParams {
    /// Lowercase hex SHA-256 of the session token.
    pub token_sha256: String,
    /// The name of the API key that logged in.
    pub key_name: String,
    /// Now: when it begins (and the time expired sessions are judged by).
    pub now: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}
