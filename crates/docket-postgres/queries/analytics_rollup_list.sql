SELECT * FROM docket_attempt_rollup
WHERE ($1::timestamptz IS NULL OR hour >= $1)
  AND ($2::text IS NULL OR job_type = $2)
ORDER BY hour, job_type, queue, outcome
