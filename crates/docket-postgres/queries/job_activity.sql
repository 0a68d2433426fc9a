-- Recent throughput and the oldest due job's wait, per kind and queue. Finished rows are
-- reached through processing_jobs_finished_idx, due ones through processing_jobs_fetch_idx.
WITH t AS (SELECT coalesce($1, now()) AS now),
finished AS (
    SELECT job_type, queue,
           count(*) FILTER (WHERE status = 'completed' AND completed_at >= t.now - interval '1 minute') AS completed_last_minute,
           count(*) FILTER (WHERE status = 'failed' AND completed_at >= t.now - interval '1 minute') AS failed_last_minute,
           count(*) FILTER (WHERE status = 'completed') AS completed_last_hour,
           count(*) FILTER (WHERE status = 'failed') AS failed_last_hour
    FROM processing_jobs, t
    WHERE status IN ('completed', 'failed')
      AND completed_at >= t.now - interval '1 hour'
      AND completed_at <= t.now
    GROUP BY job_type, queue
),
waiting AS (
    SELECT job_type, queue, min(run_at) AS oldest_due_at
    FROM processing_jobs, t
    WHERE status IN ('queued', 'retrying') AND run_at <= t.now
    GROUP BY job_type, queue
)
SELECT job_type, queue,
       coalesce(f.completed_last_minute, 0) AS completed_last_minute,
       coalesce(f.failed_last_minute, 0) AS failed_last_minute,
       coalesce(f.completed_last_hour, 0) AS completed_last_hour,
       coalesce(f.failed_last_hour, 0) AS failed_last_hour,
       w.oldest_due_at
FROM finished f FULL JOIN waiting w USING (job_type, queue)
ORDER BY job_type, queue
