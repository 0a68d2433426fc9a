-- Guarded finalisation: applies only while the job is still running under the claim the
-- worker was given (its token), whatever happened meanwhile. One statement updates the jobs and
-- writes their attempt rows. The engine decided each transition (CompletionOutcome::transition).
WITH input AS (
    SELECT *
    FROM unnest($1::int8[], $2::int4[], $3::text[], $4::timestamptz[], $5::text[],
                $6::int4[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::text[],
                $11::uuid[], $12::timestamptz[], $13::text[], $14::bool[])
         AS t(id, attempt, status, run_at, last_error, attempts_delta, worker_id,
              started_at, finished_at, outcome, claim_token, completed_at, error,
              rescues_reset)
), done AS (
    UPDATE processing_jobs j
    SET status = i.status,
        run_at = coalesce(i.run_at, j.run_at),
        last_error = coalesce(i.last_error, j.last_error),
        attempts = j.attempts + i.attempts_delta,
        completed_at = i.completed_at,
        rescues = CASE WHEN i.rescues_reset THEN 0 ELSE j.rescues END,
        locked_by = NULL,
        locked_at = NULL,
        claim_token = NULL,
        updated_at = i.finished_at
    FROM input i
    WHERE j.id = i.id AND j.status = 'running' AND j.claim_token = i.claim_token
    RETURNING i.*
)
INSERT INTO job_attempts
    (job_id, attempt, worker_id, started_at, finished_at, outcome, error, duration_ms)
SELECT id, attempt, worker_id, started_at, finished_at, outcome, error,
       greatest(0, (extract(epoch FROM finished_at - started_at) * 1000)::bigint)
FROM done
RETURNING job_id
