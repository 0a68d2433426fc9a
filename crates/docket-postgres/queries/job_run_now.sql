-- Run now: queued (also scheduled for later) and retrying jobs become due at once, spending no
-- attempt. With no ids, every such job matching the filters.
UPDATE processing_jobs
SET run_at = coalesce($4::timestamptz, now()),
    updated_at = coalesce($4::timestamptz, now())
WHERE status IN ('queued', 'retrying')
  AND (cardinality($1::int8[]) = 0 OR id = ANY($1::int8[]))
  AND ($2::text IS NULL OR job_type = $2)
  AND ($3::text IS NULL OR queue = $3)
RETURNING id
