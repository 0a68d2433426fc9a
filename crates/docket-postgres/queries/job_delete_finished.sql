DELETE FROM processing_jobs
WHERE id IN (
    SELECT id FROM processing_jobs
    WHERE (status IN ('completed', 'cancelled') AND completed_at < $1)
       OR (status = 'failed' AND completed_at < $2)
    LIMIT $3)
