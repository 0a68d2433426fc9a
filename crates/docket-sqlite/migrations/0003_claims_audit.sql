-- docket schema, version 3 (SQLite): claim tokens, attempt budgets and rescue counts on jobs;
-- cancelled documents; the operator audit trail. Same meaning as on PostgreSQL (see its
-- version 3 for the columns).
--
-- The driver runs its migrations with foreign keys off (and checks them after), as SQLite's
-- table-rebuild procedure requires: the documents table is rebuilt below to widen its status
-- check, and dropping it with foreign keys on would cascade into its texts and chunks.

ALTER TABLE processing_jobs ADD COLUMN claim_token TEXT;
ALTER TABLE processing_jobs ADD COLUMN attempt_budget INTEGER;
ALTER TABLE processing_jobs ADD COLUMN rescues INTEGER NOT NULL DEFAULT 0;

CREATE TABLE documents_v3 (
    id                 TEXT PRIMARY KEY NOT NULL,
    source             TEXT    NOT NULL CHECK (source IN ('upload', 'url', 'webhook')),
    filename           TEXT,
    content_type       TEXT,
    size_bytes         INTEGER NOT NULL CHECK (size_bytes >= 0),
    sha256             TEXT    NOT NULL,
    storage_key        TEXT    NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'parsing', 'chunking', 'embedding',
                                         'completing', 'notifying', 'completed', 'failed',
                                         'cancelled')),
    progress           INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    stage              TEXT,
    error              TEXT,
    error_stage        TEXT,
    timings            TEXT    NOT NULL DEFAULT '{}'
                       CHECK (json_valid(timings) AND json_type(timings) = 'object'),
    callback_url       TEXT,
    metadata           TEXT    NOT NULL DEFAULT '{}'
                       CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    priority           INTEGER NOT NULL DEFAULT 0,
    generation         INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1),
    active_generation  INTEGER,
    chunk_count        INTEGER NOT NULL DEFAULT 0,
    token_count        INTEGER NOT NULL DEFAULT 0,
    embedder           TEXT,
    created_at         INTEGER NOT NULL
                       DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)),
    updated_at         INTEGER NOT NULL
                       DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)),
    completed_at       INTEGER
) STRICT;
INSERT INTO documents_v3 SELECT * FROM documents;
DROP TABLE documents;
ALTER TABLE documents_v3 RENAME TO documents;
CREATE UNIQUE INDEX documents_sha256_idx ON documents (sha256);
CREATE INDEX documents_status_idx ON documents (status, updated_at);
CREATE INDEX documents_created_idx ON documents (created_at);

CREATE TABLE docket_audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT,
    job_ids  TEXT    NOT NULL DEFAULT '[]'
             CHECK (json_valid(job_ids) AND json_type(job_ids) = 'array'),
    detail   TEXT    NOT NULL DEFAULT '{}'
             CHECK (json_valid(detail) AND json_type(detail) = 'object')
) STRICT;
CREATE INDEX docket_audit_at_idx ON docket_audit (at);
