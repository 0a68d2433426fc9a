-- Jobs completed and dead-lettered per minute from $1 to $2 (default now), oldest first.
-- Finished rows are reached through processing_jobs_finished_idx.
SELECT date_trunc('minute', completed_at) AS minute,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM processing_jobs
WHERE status IN ('completed', 'failed')
  AND completed_at >= $1
  AND completed_at <= coalesce($2, now())
GROUP BY 1
ORDER BY 1
