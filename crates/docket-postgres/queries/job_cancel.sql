WITH target AS (
    SELECT id, status AS old_status, attempts, locked_by, started_at
    FROM processing_jobs
    WHERE id = ANY($1::int8[]) AND status IN ('queued', 'retrying', 'running')
    FOR UPDATE
), upd AS (
    UPDATE processing_jobs j
    SET status = 'cancelled',
        completed_at = coalesce($2::timestamptz, now()),
        locked_by = NULL,
        locked_at = NULL,
        claim_token = NULL,
        updated_at = coalesce($2::timestamptz, now())
    FROM target t
    WHERE j.id = t.id
    RETURNING t.*
), attempt AS (
    -- A running attempt ends here: its worker's completion will be refused.
    INSERT INTO job_attempts
        (job_id, attempt, worker_id, started_at, finished_at, outcome, error, duration_ms)
    SELECT id, attempts, coalesce(locked_by, ''), coalesce(started_at, coalesce($2::timestamptz, now())),
           coalesce($2::timestamptz, now()), 'cancelled', 'cancelled while running',
           greatest(0, (extract(epoch FROM coalesce($2::timestamptz, now()) - started_at) * 1000)::bigint)
    FROM upd
    WHERE old_status = 'running'
)
SELECT id FROM upd
