-- Recent throughput and the oldest due job's wait, per kind and queue (times in
-- microseconds; ?1 is now). Completions are jobs, by completed_at
-- (processing_jobs_finished_idx). Failures are attempts that dead-lettered their job, by the
-- attempt's finished_at (job_attempts_failed_idx): outcome 'failed', or 'rescued' on the
-- job's last allowed attempt. Counting attempts keeps a dead letter retried by hand afterwards
-- (even to success) in the window it failed in; attempts that failed with attempts left are
-- not failures of the job and are not counted. Due jobs are reached through
-- processing_jobs_fetch_idx.
WITH completed AS (
    SELECT job_type, queue,
           sum(completed_at >= ?1 - 60000000) AS last_minute,
           count(*) AS last_hour
    FROM processing_jobs
    WHERE status = 'completed'
      AND completed_at >= ?1 - 3600000000
      AND completed_at <= ?1
    GROUP BY job_type, queue
),
failed AS (
    SELECT j.job_type, j.queue,
           sum(a.finished_at >= ?1 - 60000000) AS last_minute,
           count(*) AS last_hour
    FROM job_attempts a
    JOIN processing_jobs j ON j.id = a.job_id
    WHERE a.outcome IN ('failed', 'rescued')
      AND (a.outcome = 'failed' OR a.attempt >= j.max_attempts)
      AND a.finished_at >= ?1 - 3600000000
      AND a.finished_at <= ?1
    GROUP BY j.job_type, j.queue
),
waiting AS (
    SELECT job_type, queue, min(run_at) AS oldest_due_at
    FROM processing_jobs
    WHERE status IN ('queued', 'retrying') AND run_at <= ?1
    GROUP BY job_type, queue
),
groups AS (
    SELECT job_type, queue FROM completed
    UNION SELECT job_type, queue FROM failed
    UNION SELECT job_type, queue FROM waiting
)
SELECT g.job_type, g.queue,
       coalesce(c.last_minute, 0) AS completed_last_minute,
       coalesce(f.last_minute, 0) AS failed_last_minute,
       coalesce(c.last_hour, 0) AS completed_last_hour,
       coalesce(f.last_hour, 0) AS failed_last_hour,
       w.oldest_due_at
FROM groups g
LEFT JOIN completed c ON c.job_type = g.job_type AND c.queue = g.queue
LEFT JOIN failed f ON f.job_type = g.job_type AND f.queue = g.queue
LEFT JOIN waiting w ON w.job_type = g.job_type AND w.queue = g.queue
ORDER BY g.job_type, g.queue
