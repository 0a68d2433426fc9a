-- Step 1 of job_rescue_many: the attempt rows of the rescues that apply (the job still runs
-- under the dead claim). ?1 is a JSON array of [id, claim_token, attempt, worker_id,
-- started_at, status, run_at, error, max_attempts]; ?2 is now.
WITH r AS (
    SELECT value ->> 0 AS id, value ->> 1 AS claim_token, value ->> 2 AS attempt,
           value ->> 3 AS worker_id, value ->> 4 AS started_at, value ->> 7 AS error
    FROM json_each(?1)
)
INSERT INTO job_attempts
    (job_id, attempt, worker_id, started_at, finished_at, outcome, error, duration_ms)
SELECT r.id, r.attempt, r.worker_id, r.started_at, ?2, 'rescued', r.error,
       max(0, (?2 - r.started_at + 500) / 1000)
FROM r
JOIN processing_jobs AS j ON j.id = r.id
WHERE j.status = 'running' AND j.claim_token IS r.claim_token
