-- Rescued jobs go back to the queue (the attempt counts), or to the dead-letter state when no
-- attempts are left. ?1 is a JSON array of ids.
UPDATE processing_jobs
SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
    run_at = ?2,
    last_error = 'lease expired: worker ' || coalesce(locked_by, '?')
                 || ' stopped heartbeating (died or lost the database)',
    completed_at = CASE WHEN attempts >= max_attempts THEN ?2 END,
    locked_by = NULL,
    locked_at = NULL,
    updated_at = ?2
WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'running'
RETURNING id, status
