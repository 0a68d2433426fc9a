-- Manual retry of dead-lettered or cancelled jobs: due now, with a fresh grant of attempts.
-- Attempt numbers only grow (an old claim's attempt can never match a new one): the retry
-- raises max_attempts by the job's budget, its first max_attempts. A job whose unique key is
-- held by another live job stays where it is; of several finished jobs sharing a key, only the
-- newest is requeued.
WITH candidate AS (
    SELECT id, unique_key,
           row_number() OVER (PARTITION BY unique_key ORDER BY id DESC) AS nth
    FROM processing_jobs
    WHERE status IN ('failed', 'cancelled')
      AND (cardinality($1::int8[]) = 0 OR id = ANY($1::int8[]))
      AND ($2::text IS NULL OR job_type = $2)
      AND ($3::text IS NULL OR queue = $3)
)
UPDATE processing_jobs j
SET status = 'queued',
    max_attempts = j.attempts + coalesce(j.attempt_budget, j.max_attempts),
    attempt_budget = coalesce(j.attempt_budget, j.max_attempts),
    rescues = 0,
    run_at = coalesce($4::timestamptz, now()),
    completed_at = NULL,
    locked_by = NULL,
    locked_at = NULL,
    claim_token = NULL,
    updated_at = coalesce($4::timestamptz, now())
FROM candidate c
WHERE j.id = c.id
  AND (c.unique_key IS NULL OR (c.nth = 1 AND NOT EXISTS (
      SELECT 1 FROM processing_jobs o
      WHERE o.unique_key = c.unique_key AND o.status IN ('queued', 'running', 'retrying'))))
RETURNING j.id
