-- docket document store, version 2 (SQLite): documents, their parsed texts and chunks, with
-- the same meaning as the PostgreSQL schema. As in version 1, times are INTEGER microseconds
-- since the Unix epoch (UTC), JSON is TEXT, UUIDs are hyphenated lower-case TEXT (so that
-- they compare, and UUID v7 ids sort, as PostgreSQL's uuid does), and tables are STRICT.
-- Embeddings are BLOBs of f32 little-endian, 4 bytes per dimension, as on PostgreSQL.

CREATE TABLE documents (
    id                 TEXT PRIMARY KEY NOT NULL,
    source             TEXT    NOT NULL CHECK (source IN ('upload', 'url', 'webhook')),
    filename           TEXT,
    content_type       TEXT,
    size_bytes         INTEGER NOT NULL CHECK (size_bytes >= 0),
    sha256             TEXT    NOT NULL,
    storage_key        TEXT    NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'parsing', 'chunking', 'embedding',
                                         'completing', 'notifying', 'completed', 'failed')),
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

-- Deduplication of uploads.
-- One document per content: identical bytes find the existing document.
CREATE UNIQUE INDEX documents_sha256_idx ON documents (sha256);
-- The stuck-document sweep, and the dashboard's lists by status.
CREATE INDEX documents_status_idx ON documents (status, updated_at);
-- "The last 24 hours". Listing newest first uses the primary key: ids are UUID v7.
CREATE INDEX documents_created_idx ON documents (created_at);

CREATE TABLE document_texts (
    document_id  TEXT    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    generation   INTEGER NOT NULL,
    format       TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    sections     TEXT    NOT NULL DEFAULT '[]'
                 CHECK (json_valid(sections) AND json_type(sections) = 'array'),
    PRIMARY KEY (document_id, generation)
) STRICT;

CREATE TABLE document_chunks (
    -- AUTOINCREMENT: ids are never reused (a search index keyed by chunk id never mistakes a
    -- new chunk for a deleted one), as PostgreSQL's identity.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id   TEXT    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    generation    INTEGER NOT NULL,
    chunk_index   INTEGER NOT NULL,
    text          TEXT    NOT NULL,
    -- Character (not byte) offsets into the generation's parsed text.
    char_start    INTEGER NOT NULL,
    char_end      INTEGER NOT NULL,
    token_count   INTEGER NOT NULL,
    heading_path  TEXT    NOT NULL DEFAULT '[]'
                  CHECK (json_valid(heading_path) AND json_type(heading_path) = 'array'),
    page          INTEGER,
    embedding     BLOB    CHECK (length(embedding) % 4 = 0),
    -- Its index also serves lookups by (document_id, generation) and the cascade.
    UNIQUE (document_id, generation, chunk_index)
) STRICT;
