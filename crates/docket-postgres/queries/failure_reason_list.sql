SELECT * FROM docket_failure_reasons
WHERE ($1::text IS NULL OR job_type = $1)
  AND ($2::timestamptz IS NULL OR last_seen >= $2)
ORDER BY count DESC, last_seen DESC, job_type, reason
LIMIT $3
