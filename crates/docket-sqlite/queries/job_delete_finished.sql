-- Each arm repeats the finished index's predicate, so that SQLite can prove it applies and
-- seeks (status, completed_at) instead of scanning the table. Attempts go by ON DELETE CASCADE.
DELETE FROM processing_jobs
WHERE id IN (
    SELECT id FROM processing_jobs
    WHERE status IN ('completed', 'failed', 'cancelled')
      AND status IN ('completed', 'cancelled') AND completed_at < ?1
    UNION ALL
    SELECT id FROM processing_jobs
    WHERE status IN ('completed', 'failed', 'cancelled')
      AND status = 'failed' AND completed_at < ?2
    LIMIT ?3)
