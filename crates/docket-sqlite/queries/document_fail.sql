UPDATE documents
SET status = 'failed',
    stage = ?3,
    error_stage = ?3,
    error = ?4,
    updated_at = ?5
WHERE id = ?1 AND generation = ?2 AND status <> 'cancelled'
