-- The batch claim. Priorities are 0 to 10 (a check constraint): each is read on its own from
-- the claim index, equality on (queue, priority) and a range on run_at, in claim order, so a
-- claim touches only due jobs however many wait for later (a provider outage can snooze a
-- million): ordering the whole queue by priority first would walk past every one of them.
WITH picked AS (
    SELECT j.id
    FROM generate_series(10, 0, -1) AS p(priority),
    LATERAL (
        SELECT id
        FROM processing_jobs
        WHERE queue = $2
          AND priority = p.priority
          AND status IN ('queued', 'retrying')
          AND run_at <= coalesce($4::timestamptz, now())
        ORDER BY run_at, id
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    ) j
    WHERE NOT EXISTS (
        SELECT 1 FROM docket_queues q
        WHERE q.name IN ($2, '*') AND q.paused_at IS NOT NULL)
    LIMIT $3
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
