-- The batch claim. SQLite has one writer at a time, so the subquery's pick cannot be raced:
-- no SKIP LOCKED is needed. RETURNING gives no order; the caller sorts.
UPDATE processing_jobs
SET status = 'running',
    attempts = attempts + 1,
    -- A random (version 4) UUID per row, as hyphenated text like every UUID here.
    claim_token = lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
                  || substr(lower(hex(randomblob(2))), 2) || '-'
                  || substr('89ab', 1 + abs(random() % 4), 1)
                  || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
    locked_by = ?1,
    locked_at = ?4,
    started_at = ?4,
    updated_at = ?4
WHERE id IN (
    SELECT id
    FROM processing_jobs
    WHERE queue = ?2
      AND status IN ('queued', 'retrying')
      AND run_at <= ?4
      AND NOT EXISTS (
          SELECT 1 FROM docket_queues q
          WHERE q.name IN (?2, '*') AND q.paused_at IS NOT NULL)
    ORDER BY priority DESC, run_at, id
    LIMIT ?3)
RETURNING *
