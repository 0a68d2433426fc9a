-- Discards dead letters for good (their attempts go with them). ?1 is a JSON array of ids;
-- when empty, every failed job matching the filters.
DELETE FROM processing_jobs
WHERE status = 'failed'
  AND (json_array_length(?1) = 0 OR id IN (SELECT value FROM json_each(?1)))
  AND (?2 IS NULL OR job_type = ?2)
  AND (?3 IS NULL OR queue = ?3)
RETURNING id
