-- Recent throughput and the oldest due job's wait, per kind and queue (times in
-- microseconds; ?1 is now). Finished rows are reached through processing_jobs_finished_idx,
-- due ones through processing_jobs_fetch_idx.
WITH finished AS (
    SELECT job_type, queue,
           sum(status = 'completed' AND completed_at >= ?1 - 60000000) AS completed_last_minute,
           sum(status = 'failed' AND completed_at >= ?1 - 60000000) AS failed_last_minute,
           sum(status = 'completed') AS completed_last_hour,
           sum(status = 'failed') AS failed_last_hour
    FROM processing_jobs
    WHERE status IN ('completed', 'failed')
      AND completed_at >= ?1 - 3600000000
      AND completed_at <= ?1
    GROUP BY job_type, queue
),
waiting AS (
    SELECT job_type, queue, min(run_at) AS oldest_due_at
    FROM processing_jobs
    WHERE status IN ('queued', 'retrying') AND run_at <= ?1
    GROUP BY job_type, queue
)
SELECT coalesce(f.job_type, w.job_type) AS job_type,
       coalesce(f.queue, w.queue) AS queue,
       coalesce(f.completed_last_minute, 0) AS completed_last_minute,
       coalesce(f.failed_last_minute, 0) AS failed_last_minute,
       coalesce(f.completed_last_hour, 0) AS completed_last_hour,
       coalesce(f.failed_last_hour, 0) AS failed_last_hour,
       w.oldest_due_at
FROM finished f FULL JOIN waiting w ON w.job_type = f.job_type AND w.queue = f.queue
ORDER BY 1, 2
