SELECT * FROM docket_attempt_rollup
WHERE (?1 IS NULL OR hour >= ?1)
  AND (?2 IS NULL OR job_type = ?2)
ORDER BY hour, job_type, queue, outcome
