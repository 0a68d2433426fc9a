-- docket queue schema, version 1 (SQLite).
-- The same tables, views and meanings as the PostgreSQL schema, in SQLite's own terms:
--   * every time is an INTEGER of microseconds since the Unix epoch, UTC (fixed width, sorts
--     as it should, compares without parsing);
--   * JSON (payloads, a worker's queues) is TEXT holding valid JSON;
--   * UUIDs are TEXT, hyphenated and lower-case;
--   * tables are STRICT, so a value of the wrong type is refused as PostgreSQL would refuse it.
-- There is no cleanup_old_jobs(): SQLite has no stored functions; the cleaner deletes finished
-- jobs itself.
-- Column defaults read the clock through julianday('now'), which every SQLite version has, so
-- that rows written and views read by hand with the sqlite3 shell behave; docket itself always
-- writes its times explicitly.

CREATE TABLE processing_jobs (
    -- AUTOINCREMENT: ids only ever grow, even after the newest job is deleted (PostgreSQL's
    -- identity never reuses a value either; cron_runs.job_id relies on it).
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id   TEXT,
    job_type      TEXT    NOT NULL,
    queue         TEXT    NOT NULL DEFAULT 'default',
    status        TEXT    NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'retrying', 'completed', 'failed', 'cancelled')),
    priority      INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 10),
    payload       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL DEFAULT 4 CHECK (max_attempts >= 1),
    run_at        INTEGER NOT NULL
                  DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)),
    locked_by     TEXT,
    locked_at     INTEGER,
    last_error    TEXT,
    unique_key    TEXT,
    created_at    INTEGER NOT NULL
                  DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)),
    started_at    INTEGER,
    completed_at  INTEGER,
    updated_at    INTEGER NOT NULL
                  DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER))
) STRICT;

-- The claim index: only due-able rows, in claim order. Finished rows (millions, kept for
-- history) are not in it, so claiming does not slow down as they pile up.
CREATE INDEX processing_jobs_fetch_idx
    ON processing_jobs (queue, priority DESC, run_at, id)
    WHERE status IN ('queued', 'retrying');

-- Lookups of the job holding a key, live or finished (duplicates report its id).
CREATE INDEX processing_jobs_unique_key_any_idx
    ON processing_jobs (unique_key, id) WHERE unique_key IS NOT NULL;

-- At most one live job per unique key.
CREATE UNIQUE INDEX processing_jobs_unique_key_idx
    ON processing_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('queued', 'running', 'retrying');

-- The rescuer's and the stuck view's scan: running jobs by worker. The predicate names
-- locked_by so that only queries that ask for it use this index: the completion statements
-- must reach their rows by primary key, whatever the planner guesses about running jobs.
CREATE INDEX processing_jobs_running_idx
    ON processing_jobs (locked_by) WHERE status = 'running' AND locked_by IS NOT NULL;

-- The cleaner's scan, and the dashboard's finished lists.
CREATE INDEX processing_jobs_finished_idx
    ON processing_jobs (status, completed_at) WHERE status IN ('completed', 'failed', 'cancelled');

CREATE INDEX processing_jobs_document_idx
    ON processing_jobs (document_id) WHERE document_id IS NOT NULL;

-- "The last 24 hours" (PostgreSQL uses a BRIN index; SQLite has none). created_at grows with
-- id, so every insert appends at the right edge of this B-tree: cheap to maintain.
CREATE INDEX processing_jobs_created_idx ON processing_jobs (created_at);

-- The audit trail: one row per attempt. The hot job row stays narrow.
CREATE TABLE job_attempts (
    id           INTEGER PRIMARY KEY,
    job_id       INTEGER NOT NULL REFERENCES processing_jobs (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    worker_id    TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    outcome      TEXT    NOT NULL
                 CHECK (outcome IN ('completed', 'retried', 'failed', 'rescued', 'released', 'cancelled')),
    error        TEXT,
    duration_ms  INTEGER NOT NULL
) STRICT;
-- Also the index that the ON DELETE CASCADE from processing_jobs needs.
CREATE INDEX job_attempts_job_idx ON job_attempts (job_id, attempt);

-- Pause switches: a row per queue that has ever been paused; '*' pauses every queue.
CREATE TABLE docket_queues (
    name        TEXT PRIMARY KEY,
    paused_at   INTEGER,
    updated_at  INTEGER NOT NULL
                DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER))
) STRICT, WITHOUT ROWID;

-- Worker liveness. A running job's lease is its worker's heartbeat: one row write per worker
-- per interval instead of one per running job.
CREATE TABLE docket_workers (
    id            TEXT PRIMARY KEY,
    hostname      TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    -- A JSON array of queue names.
    queues        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(queues) AND json_type(queues) = 'array'),
    started_at    INTEGER NOT NULL
                  DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)),
    heartbeat_at  INTEGER NOT NULL
                  DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER))
) STRICT, WITHOUT ROWID;

-- The maintenance leader: one row, taken over when its term lapses.
CREATE TABLE docket_leader (
    name        TEXT PRIMARY KEY NOT NULL DEFAULT 'default',
    leader_id   TEXT    NOT NULL,
    elected_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE cron_schedules (
    name           TEXT PRIMARY KEY NOT NULL,
    expression     TEXT    NOT NULL,
    timezone       TEXT    NOT NULL DEFAULT 'UTC',
    job_type       TEXT    NOT NULL,
    queue          TEXT    NOT NULL DEFAULT 'default',
    payload        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
    priority       INTEGER NOT NULL DEFAULT 0,
    enabled        INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    missed_policy  TEXT    NOT NULL DEFAULT 'run_once' CHECK (missed_policy IN ('run_once', 'skip')),
    next_run_at    INTEGER NOT NULL,
    last_run_at    INTEGER,
    created_at     INTEGER NOT NULL
                   DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)),
    updated_at     INTEGER NOT NULL
                   DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER))
) STRICT;

CREATE TABLE cron_runs (
    id             INTEGER PRIMARY KEY,
    schedule_name  TEXT    NOT NULL REFERENCES cron_schedules (name) ON DELETE CASCADE,
    scheduled_for  INTEGER NOT NULL,
    job_id         INTEGER,
    status         TEXT    NOT NULL DEFAULT 'enqueued',
    started_at     INTEGER,
    finished_at    INTEGER,
    message        TEXT,
    created_at     INTEGER NOT NULL
                   DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)),
    -- Each occurrence is enqueued once, whichever caller gets there first. Its index also
    -- serves the ON DELETE CASCADE from cron_schedules.
    UNIQUE (schedule_name, scheduled_for)
) STRICT;
CREATE INDEX cron_runs_open_idx ON cron_runs (job_id)
    WHERE status IN ('enqueued', 'queued', 'running', 'retrying');

-- Monitoring views (names and meaning from the original system). Times are microseconds
-- since the epoch, like the columns they come from.
CREATE VIEW job_queue_stats AS
SELECT job_type,
       queue,
       status,
       count(*)        AS count,
       min(created_at) AS oldest_created_at,
       max(updated_at) AS last_updated_at
FROM processing_jobs
GROUP BY job_type, queue, status;

CREATE VIEW failed_jobs AS
SELECT id, document_id, job_type, queue, priority, payload, attempts, max_attempts,
       last_error, created_at, started_at, completed_at AS failed_at, updated_at
FROM processing_jobs
WHERE status = 'failed';

-- Running jobs whose worker has stopped heartbeating (for over a minute), or that have run
-- for over an hour. running_for is in microseconds.
CREATE VIEW stuck_jobs AS
WITH clock (now) AS (
    SELECT CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)
)
SELECT j.id, j.document_id, j.job_type, j.queue, j.attempts, j.max_attempts,
       j.locked_by, j.locked_at, j.started_at, w.heartbeat_at AS worker_heartbeat_at,
       clock.now - j.started_at AS running_for
FROM processing_jobs j
CROSS JOIN clock
LEFT JOIN docket_workers w ON w.id = j.locked_by
WHERE j.status = 'running' AND j.locked_by IS NOT NULL
  AND (w.id IS NULL
       OR w.heartbeat_at < clock.now - 60000000
       OR j.started_at < clock.now - 3600000000);
