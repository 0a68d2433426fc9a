SELECT *
FROM processing_jobs
WHERE (cardinality($1::text[]) = 0 OR status = ANY($1::text[]))
  AND (cardinality($2::text[]) = 0 OR job_type = ANY($2::text[]))
  AND ($3::text IS NULL OR queue = $3)
  AND ($4::uuid IS NULL OR document_id = $4)
  AND ($5::int8 IS NULL OR id < $5)
ORDER BY id DESC
LIMIT $6
