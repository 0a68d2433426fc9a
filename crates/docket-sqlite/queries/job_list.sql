-- ?1 states and ?2 job types are JSON arrays; an empty array means "any".
SELECT *
FROM processing_jobs
WHERE (json_array_length(?1) = 0 OR status IN (SELECT value FROM json_each(?1)))
  AND (json_array_length(?2) = 0 OR job_type IN (SELECT value FROM json_each(?2)))
  AND (?3 IS NULL OR queue = ?3)
  AND (?4 IS NULL OR document_id = ?4)
  AND (?5 IS NULL OR id < ?5)
ORDER BY id DESC
LIMIT ?6
