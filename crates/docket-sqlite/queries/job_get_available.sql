-- The batch claim. SQLite has one writer at a time, so the subquery's pick cannot be raced:
-- no SKIP LOCKED is needed. RETURNING gives no order; the caller sorts. Priorities are 0 to 10
-- (a check constraint): each is read on its own from the claim index, equality on (queue,
-- priority) and a range on run_at, highest first, so a claim touches only due jobs however
-- many wait for later; ordering the whole queue by priority first would walk past them all.
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
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 10 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 9 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 8 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 7 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 6 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 5 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 4 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 3 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 2 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 1 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    UNION ALL
    SELECT id FROM (
        SELECT id FROM processing_jobs
        WHERE queue = ?2 AND priority = 0 AND status IN ('queued', 'retrying') AND run_at <= ?4
        ORDER BY run_at, id LIMIT ?3)
    LIMIT ?3)
  AND NOT EXISTS (
      SELECT 1 FROM docket_queues q
      WHERE q.name IN (?2, '*') AND q.paused_at IS NOT NULL)
RETURNING *
