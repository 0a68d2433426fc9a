-- docket queue schema, version 4 (SQLite): each worker's own lease; failures by attempt.

-- A worker writes its lease (the runtime's maintenance.lease_ms) with every heartbeat, so
-- that every reader (the rescuer, stuck_jobs, the dashboard, the CLI) judges it by its own
-- setting: a worker is dead once heartbeat_at + lease_ms * 1000 (microseconds) has passed.
-- The default is the lease every release before this column used; it applies only to rows
-- written by such releases.
ALTER TABLE docket_workers
    ADD COLUMN lease_ms INTEGER NOT NULL DEFAULT 30000 CHECK (lease_ms > 0);

-- Failure history: attempts that may have dead-lettered their job, by when they ended. Only
-- failing attempts are in it, so the completion path writes nothing more.
CREATE INDEX job_attempts_failed_idx
    ON job_attempts (finished_at) WHERE outcome IN ('failed', 'rescued');

-- Running jobs whose worker's lease has lapsed, or whose worker row is gone: exactly the jobs
-- the rescuer takes back. A live worker's long job is not stuck. The columns of version 1 keep
-- their names and order; worker_lease_ms is new (null when the worker row is gone).
-- running_for is in microseconds.
DROP VIEW stuck_jobs;
CREATE VIEW stuck_jobs AS
WITH clock (now) AS (
    SELECT CAST(round((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)
)
SELECT j.id, j.document_id, j.job_type, j.queue, j.attempts, j.max_attempts,
       j.locked_by, j.locked_at, j.started_at, w.heartbeat_at AS worker_heartbeat_at,
       clock.now - j.started_at AS running_for,
       w.lease_ms AS worker_lease_ms
FROM processing_jobs j
CROSS JOIN clock
LEFT JOIN docket_workers w ON w.id = j.locked_by
WHERE j.status = 'running' AND j.locked_by IS NOT NULL
  AND (w.id IS NULL
       OR w.heartbeat_at + w.lease_ms * 1000 < clock.now);
