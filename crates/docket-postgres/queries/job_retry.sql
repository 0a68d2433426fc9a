-- Manual retry of dead-lettered or cancelled jobs: fresh attempts, due now. A job whose unique
-- key is held by another live job stays where it is.
UPDATE processing_jobs j
SET status = 'queued',
    attempts = 0,
    run_at = coalesce($4::timestamptz, now()),
    completed_at = NULL,
    locked_by = NULL,
    locked_at = NULL,
    updated_at = coalesce($4::timestamptz, now())
WHERE j.status IN ('failed', 'cancelled')
  AND (cardinality($1::int8[]) = 0 OR j.id = ANY($1::int8[]))
  AND ($2::text IS NULL OR j.job_type = $2)
  AND ($3::text IS NULL OR j.queue = $3)
  AND (j.unique_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM processing_jobs o
      WHERE o.unique_key = j.unique_key AND o.status IN ('queued', 'running', 'retrying')))
RETURNING j.id
