-- One occurrence, all or nothing: advance the schedule (only if no other node has), insert the
-- job and the run row. $4 NULL is a manual run, which leaves the schedule where it is and is
-- refused while a run of the schedule is live (the caller holds the schedule's row lock, taken
-- by cron_schedule_lock.sql in an earlier statement); $5 NULL (no job) records the occurrence
-- with status $14 (skipped, invalid). An occurrence already recorded enqueues nothing.
WITH gate AS (
    UPDATE cron_schedules
    SET next_run_at = CASE WHEN $4::timestamptz IS NULL THEN next_run_at ELSE $3 END,
        last_run_at = CASE WHEN $4::timestamptz IS NULL OR $5::text IS NULL THEN last_run_at ELSE $2 END,
        updated_at = now()
    WHERE name = $1
      AND ($4::timestamptz IS NULL OR next_run_at = $4)
      -- Live: a run still open whose job is queued, running or retrying (the job decides; the
      -- run's own status lags until the next cron_run_sync). The partial index on open runs
      -- keeps this to the few unfinished ones.
      AND ($4::timestamptz IS NOT NULL OR NOT EXISTS (
          SELECT 1
          FROM cron_runs r
          JOIN processing_jobs j ON j.id = r.job_id
          WHERE r.schedule_name = $1
            AND r.status IN ('enqueued', 'queued', 'running', 'retrying')
            AND j.status IN ('queued', 'running', 'retrying')))
    RETURNING name
), fresh AS (
    SELECT name FROM gate
    WHERE NOT EXISTS (SELECT 1 FROM cron_runs WHERE schedule_name = $1 AND scheduled_for = $2)
), job AS (
    INSERT INTO processing_jobs
        (job_type, queue, priority, payload, max_attempts, unique_key, run_at, document_id, status)
    SELECT $5, $6, $7, $8, $9, $10, coalesce($12::timestamptz, now()), $13, 'queued'
    FROM fresh WHERE $5::text IS NOT NULL
    ON CONFLICT (unique_key)
        WHERE unique_key IS NOT NULL AND status IN ('queued', 'running', 'retrying')
        DO NOTHING
    RETURNING id
)
INSERT INTO cron_runs (schedule_name, scheduled_for, job_id, status, message)
SELECT $1, $2, (SELECT id FROM job),
       -- 'duplicate': a live job already held the key, so no job would move this run on.
       CASE WHEN $5::text IS NULL THEN $14::text
            WHEN (SELECT id FROM job) IS NULL THEN 'duplicate'
            ELSE 'enqueued' END, $11
FROM fresh
ON CONFLICT (schedule_name, scheduled_for) DO NOTHING
RETURNING *
