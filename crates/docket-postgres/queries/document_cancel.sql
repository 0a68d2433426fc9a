-- Cancels unfinished documents. The active generation (if any) stays searchable; nothing but a
-- reprocess moves the document on.
UPDATE documents
SET status = 'cancelled',
    error = $2,
    error_stage = stage,
    updated_at = coalesce($3::timestamptz, now())
WHERE id = ANY($1::uuid[]) AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING id
