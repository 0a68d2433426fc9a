-- ?1 is a JSON array of ids.
UPDATE processing_jobs
SET status = 'cancelled',
    completed_at = ?2,
    locked_by = NULL,
    locked_at = NULL,
    claim_token = NULL,
    updated_at = ?2
WHERE id IN (SELECT value FROM json_each(?1)) AND status IN ('queued', 'retrying', 'running')
RETURNING id
