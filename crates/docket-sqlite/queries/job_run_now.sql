-- Run now: queued (also scheduled for later) and retrying jobs become due at once, spending no
-- attempt. ?1 is a JSON array of ids; when empty, every such job matching the filters.
UPDATE processing_jobs AS j
SET run_at = ?4,
    updated_at = ?4
WHERE j.status IN ('queued', 'retrying')
  AND (json_array_length(?1) = 0 OR j.id IN (SELECT value FROM json_each(?1)))
  AND (?2 IS NULL OR j.job_type = ?2)
  AND (?3 IS NULL OR j.queue = ?3)
RETURNING id
