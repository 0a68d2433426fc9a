-- Guarded finalisation: applies only while the job is still running at the attempt the worker
-- claimed, under that worker (attempt numbers can repeat after a manual retry or a release). One statement updates the jobs and writes their attempt rows.
WITH input AS (
    SELECT *
    FROM unnest($1::int8[], $2::int4[], $3::text[], $4::timestamptz[], $5::text[],
                $6::int4[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::text[])
         AS t(id, attempt, status, run_at, error, attempts_delta, worker_id,
              started_at, finished_at, outcome)
), done AS (
    UPDATE processing_jobs j
    SET status = i.status,
        run_at = coalesce(i.run_at, j.run_at),
        last_error = CASE WHEN i.outcome IN ('retried', 'failed') THEN i.error ELSE j.last_error END,
        attempts = j.attempts + i.attempts_delta,
        completed_at = CASE WHEN i.status IN ('completed', 'failed') THEN i.finished_at END,
        locked_by = NULL,
        locked_at = NULL,
        updated_at = i.finished_at
    FROM input i
    WHERE j.id = i.id AND j.status = 'running' AND j.attempts = i.attempt
      -- IS NOT DISTINCT FROM, not =: an equality would let the planner pick the partial index
      -- of running jobs (see the migration) instead of the primary key.
      AND j.locked_by IS NOT DISTINCT FROM i.worker_id
    RETURNING i.*
)
INSERT INTO job_attempts
    (job_id, attempt, worker_id, started_at, finished_at, outcome, error, duration_ms)
SELECT id, attempt, worker_id, started_at, finished_at, outcome, error,
       greatest(0, (extract(epoch FROM finished_at - started_at) * 1000)::bigint)
FROM done
RETURNING job_id
