-- Step 2 of job_complete_many, in the same transaction: finalise the jobs, guarded exactly as
-- step 1 was. ?1 is the same JSON array: the new status, run_at (NULL keeps it), last_error
-- (NULL keeps it), attempts delta, completed_at and whether rescues in a row start over.
WITH c AS (
    SELECT value ->> 0 AS id, value ->> 2 AS status,
           value ->> 3 AS run_at, value ->> 4 AS last_error, value ->> 5 AS attempts_delta,
           value ->> 6 AS completed_at, value ->> 7 AS finished_at,
           value ->> 12 AS claim_token, value ->> 13 AS rescues_reset
    FROM json_each(?1)
)
UPDATE processing_jobs AS j
SET status = c.status,
    run_at = coalesce(c.run_at, j.run_at),
    last_error = coalesce(c.last_error, j.last_error),
    attempts = j.attempts + c.attempts_delta,
    completed_at = c.completed_at,
    rescues = CASE WHEN c.rescues_reset THEN 0 ELSE j.rescues END,
    locked_by = NULL,
    locked_at = NULL,
    claim_token = NULL,
    updated_at = c.finished_at
FROM c
WHERE j.id = c.id AND j.status = 'running' AND j.claim_token = c.claim_token
