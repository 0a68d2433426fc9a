-- docket dashboard sessions, version 9 (SQLite): stored so that they survive restarts and
-- work across several `serve` processes. Kept by the SHA-256 of their token (the token itself
-- lives only in the browser's cookie). Times are microseconds since the Unix epoch.
CREATE TABLE docket_sessions (
    token_sha256 TEXT    PRIMARY KEY,
    key_name     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
-- Logout everywhere (by key), and the pruning of ended sessions.
CREATE INDEX docket_sessions_key_idx ON docket_sessions (key_name);
CREATE INDEX docket_sessions_expires_idx ON docket_sessions (expires_at);
