-- Discards dead letters for good (their attempts go with them). With no ids, every failed job
-- matching the filters.
DELETE FROM processing_jobs
WHERE status = 'failed'
  AND (cardinality($1::int8[]) = 0 OR id = ANY($1::int8[]))
  AND ($2::text IS NULL OR job_type = $2)
  AND ($3::text IS NULL OR queue = $3)
RETURNING id
