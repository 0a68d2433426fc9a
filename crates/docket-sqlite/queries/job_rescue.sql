-- Step 2 of job_rescue_many, in the same transaction and with the same guard: each job goes
-- back to the queue (due at its backoff, with the max_attempts the engine gave it, one more
-- rescue in a row) or to the dead-letter state, as the engine decided.
WITH r AS (
    SELECT value ->> 0 AS id, value ->> 1 AS claim_token, value ->> 5 AS status,
           value ->> 6 AS run_at, value ->> 7 AS error, value ->> 8 AS max_attempts
    FROM json_each(?1)
)
UPDATE processing_jobs AS j
SET status = r.status,
    run_at = CASE WHEN r.status = 'queued' THEN r.run_at ELSE j.run_at END,
    last_error = r.error,
    max_attempts = r.max_attempts,
    rescues = j.rescues + 1,
    completed_at = CASE WHEN r.status = 'failed' THEN ?2 END,
    locked_by = NULL,
    locked_at = NULL,
    claim_token = NULL,
    updated_at = ?2
FROM r
WHERE j.id = r.id AND j.status = 'running' AND j.claim_token IS r.claim_token
RETURNING id, status
