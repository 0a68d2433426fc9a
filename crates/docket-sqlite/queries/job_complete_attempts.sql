-- Step 1 of job_complete_many: the attempt rows of the completions that apply, that is whose
-- job still runs under the claim the worker was given. Returns their job ids.
-- ?1 is a JSON array with one array per completion (no job twice), as the engine decided it
-- (CompletionOutcome::transition): [id, attempt, status, run_at, last_error, attempts_delta,
-- completed_at, finished_at, worker_id, started_at, outcome, error, claim_token,
-- rescues_reset]. duration_ms rounds to the nearest millisecond.
WITH c AS (
    SELECT value ->> 0 AS id, value ->> 1 AS attempt, value ->> 7 AS finished_at,
           value ->> 8 AS worker_id, value ->> 9 AS started_at, value ->> 10 AS outcome,
           value ->> 11 AS error, value ->> 12 AS claim_token
    FROM json_each(?1)
)
INSERT INTO job_attempts
    (job_id, attempt, worker_id, started_at, finished_at, outcome, error, duration_ms)
SELECT c.id, c.attempt, c.worker_id, c.started_at, c.finished_at, c.outcome, c.error,
       max(0, (c.finished_at - c.started_at + 500) / 1000)
FROM c
JOIN processing_jobs AS j ON j.id = c.id
WHERE j.status = 'running' AND j.claim_token = c.claim_token
RETURNING job_id
