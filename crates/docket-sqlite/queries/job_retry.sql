-- Manual retry of dead-lettered or cancelled jobs: due now, with a fresh grant of attempts
-- (attempt numbers only grow: max_attempts rises by the job's budget, its first max_attempts).
-- ?1 is a JSON array of ids; when empty, every failed or cancelled job matching the filters
-- (found through the finished index; the empty-array test is constant, so that arm costs
-- nothing when ids are given). A job whose unique key is held by another live job stays where
-- it is; of several finished jobs sharing a key, only the newest selected one is requeued, as
-- on PostgreSQL.
WITH candidate AS (
    SELECT id, unique_key
    FROM processing_jobs
    WHERE status IN ('failed', 'cancelled')
      AND id IN (
          SELECT value FROM json_each(?1)
          UNION ALL
          SELECT id FROM processing_jobs
          WHERE json_array_length(?1) = 0
            AND status IN ('completed', 'failed', 'cancelled')
            AND status IN ('failed', 'cancelled'))
      AND (?2 IS NULL OR job_type = ?2)
      AND (?3 IS NULL OR queue = ?3)
), picked AS (
    SELECT c.id
    FROM candidate c
    WHERE c.unique_key IS NULL
       OR (c.id = (SELECT max(n.id) FROM candidate n WHERE n.unique_key = c.unique_key)
           AND NOT EXISTS (
               SELECT 1 FROM processing_jobs o
               WHERE o.unique_key = c.unique_key
                 AND o.status IN ('queued', 'running', 'retrying')))
)
UPDATE processing_jobs
SET status = 'queued',
    max_attempts = attempts + coalesce(attempt_budget, max_attempts),
    attempt_budget = coalesce(attempt_budget, max_attempts),
    rescues = 0,
    claim_token = NULL,
    run_at = ?4,
    completed_at = NULL,
    locked_by = NULL,
    locked_at = NULL,
    updated_at = ?4
WHERE id IN (SELECT id FROM picked)
RETURNING id
