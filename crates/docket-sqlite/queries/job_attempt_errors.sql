-- Failed attempts (retried, failed, rescued) with an error that finished in [?1, ?2), by kind
-- and message.
SELECT j.job_type, a.error,
       count(*) AS count,
       min(a.finished_at) AS first_at,
       max(a.finished_at) AS last_at,
       max(a.job_id) AS last_job_id
FROM job_attempts a
JOIN processing_jobs j ON j.id = a.job_id
WHERE a.finished_at >= ?1
  AND a.finished_at < ?2
  AND a.outcome IN ('retried', 'failed', 'rescued')
  AND a.error IS NOT NULL
GROUP BY j.job_type, a.error
ORDER BY count(*) DESC, j.job_type, a.error
