-- Jobs completed and dead-lettered per minute from ?1 to ?2, oldest first (times in
-- microseconds; a minute is 60,000,000 of them). Finished rows are reached through
-- processing_jobs_finished_idx.
SELECT (completed_at / 60000000) * 60000000 AS minute,
       sum(status = 'completed') AS completed,
       sum(status = 'failed') AS failed
FROM processing_jobs
WHERE status IN ('completed', 'failed')
  AND completed_at >= ?1
  AND completed_at <= ?2
GROUP BY 1
ORDER BY 1
