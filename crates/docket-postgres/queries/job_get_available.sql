WITH picked AS (
    SELECT id
    FROM processing_jobs
    WHERE queue = $2
      AND status IN ('queued', 'retrying')
      AND run_at <= coalesce($4::timestamptz, now())
      AND NOT EXISTS (
          SELECT 1 FROM docket_queues q
          WHERE q.name IN ($2, '*') AND q.paused_at IS NOT NULL)
    ORDER BY priority DESC, run_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE processing_jobs j
SET status = 'running',
    attempts = j.attempts + 1,
    claim_token = gen_random_uuid(),
    locked_by = $1,
    locked_at = coalesce($4::timestamptz, now()),
    started_at = coalesce($4::timestamptz, now()),
    updated_at = coalesce($4::timestamptz, now())
FROM picked
WHERE j.id = picked.id
RETURNING j.*
