-- docket dashboard sessions, version 10 (PostgreSQL): stored so that they survive restarts
-- and work across several `serve` processes. Kept by the SHA-256 of their token (the token
-- itself lives only in the browser's cookie).
CREATE TABLE docket_sessions (
    token_sha256 text        PRIMARY KEY,
    key_name     text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
-- Logout everywhere (by key), and the pruning of ended sessions.
CREATE INDEX docket_sessions_key_idx ON docket_sessions (key_name);
CREATE INDEX docket_sessions_expires_idx ON docket_sessions (expires_at);
