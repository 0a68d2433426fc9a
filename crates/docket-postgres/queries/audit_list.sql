SELECT *
FROM docket_audit
WHERE ($1::text IS NULL OR action = $1)
  AND ($2::int8 IS NULL OR $2 = ANY(job_ids))
  AND ($3::int8 IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4
