-- Cancels unfinished documents (?1: a JSON array of ids). The active generation (if any) stays
-- searchable; nothing but a reprocess moves the document on.
UPDATE documents
SET status = 'cancelled',
    error = ?2,
    error_stage = stage,
    updated_at = ?3
WHERE id IN (SELECT value FROM json_each(?1))
  AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING id
