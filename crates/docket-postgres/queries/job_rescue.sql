-- Running jobs whose worker stopped heartbeating (its own lease lapsed) or whose worker row is
-- gone go back to the queue (the attempt counts), or to the dead-letter state when no attempts
-- are left. Each rescued attempt is recorded. $1 is now, $2 the batch size.
WITH dead AS (
    SELECT j.id, j.locked_by, j.started_at, j.attempts, j.max_attempts
    FROM processing_jobs j
    LEFT JOIN docket_workers w ON w.id = j.locked_by
    WHERE j.status = 'running' AND j.locked_by IS NOT NULL
      AND (w.id IS NULL
           OR w.heartbeat_at + w.lease_ms * interval '1 millisecond' < coalesce($1::timestamptz, now()))
    ORDER BY j.id
    LIMIT $2
    FOR UPDATE OF j SKIP LOCKED
), upd AS (
    UPDATE processing_jobs j
    SET status = CASE WHEN d.attempts >= d.max_attempts THEN 'failed' ELSE 'queued' END,
        run_at = coalesce($1::timestamptz, now()),
        last_error = 'lease expired: worker ' || coalesce(d.locked_by, '?')
                     || ' stopped heartbeating (died or lost the database)',
        completed_at = CASE WHEN d.attempts >= d.max_attempts THEN coalesce($1::timestamptz, now()) END,
        locked_by = NULL,
        locked_at = NULL,
        updated_at = coalesce($1::timestamptz, now())
    FROM dead d
    WHERE j.id = d.id
    RETURNING j.id, j.status, j.last_error, d.locked_by, d.started_at, d.attempts
), attempt AS (
    INSERT INTO job_attempts
        (job_id, attempt, worker_id, started_at, finished_at, outcome, error, duration_ms)
    SELECT id, attempts, coalesce(locked_by, ''), coalesce(started_at, coalesce($1::timestamptz, now())),
           coalesce($1::timestamptz, now()), 'rescued', last_error,
           greatest(0, (extract(epoch FROM coalesce($1::timestamptz, now()) - started_at) * 1000)::bigint)
    FROM upd
)
SELECT id, status FROM upd
