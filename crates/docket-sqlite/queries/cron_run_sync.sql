UPDATE cron_runs AS r
SET status = j.status,
    started_at = j.started_at,
    finished_at = j.completed_at,
    message = coalesce(j.last_error, r.message)
FROM processing_jobs AS j
WHERE j.id = r.job_id
  AND r.status IN ('enqueued', 'queued', 'running', 'retrying')
  AND j.status <> r.status
