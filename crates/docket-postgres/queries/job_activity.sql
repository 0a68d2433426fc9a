-- Recent throughput and the oldest due job's wait, per kind and queue, at $1 (default now).
-- Completions are jobs, by completed_at (processing_jobs_finished_idx). Failures are attempts
-- that dead-lettered their job, by the attempt's finished_at (job_attempts_failed_idx):
-- outcome 'failed', or 'rescued' on the job's last allowed attempt. Counting attempts keeps a
-- dead letter retried by hand afterwards (even to success) in the window it failed in;
-- attempts that failed with attempts left are not failures of the job and are not counted.
-- Due jobs are reached through processing_jobs_fetch_idx.
WITH t AS (SELECT coalesce($1::timestamptz, now()) AS now),
completed AS (
    SELECT job_type, queue,
           count(*) FILTER (WHERE completed_at >= t.now - interval '1 minute') AS last_minute,
           count(*) AS last_hour
    FROM processing_jobs, t
    WHERE status = 'completed'
      AND completed_at >= t.now - interval '1 hour'
      AND completed_at <= t.now
    GROUP BY job_type, queue
),
failed AS (
    SELECT j.job_type, j.queue,
           count(*) FILTER (WHERE a.finished_at >= t.now - interval '1 minute') AS last_minute,
           count(*) AS last_hour
    FROM job_attempts a
    JOIN processing_jobs j ON j.id = a.job_id
    CROSS JOIN t
    WHERE a.outcome IN ('failed', 'rescued')
      AND (a.outcome = 'failed' OR a.attempt >= j.max_attempts)
      AND a.finished_at >= t.now - interval '1 hour'
      AND a.finished_at <= t.now
    GROUP BY j.job_type, j.queue
),
waiting AS (
    SELECT job_type, queue, min(run_at) AS oldest_due_at
    FROM processing_jobs, t
    WHERE status IN ('queued', 'retrying') AND run_at <= t.now
    GROUP BY job_type, queue
)
SELECT job_type, queue,
       coalesce(c.last_minute, 0) AS completed_last_minute,
       coalesce(f.last_minute, 0) AS failed_last_minute,
       coalesce(c.last_hour, 0) AS completed_last_hour,
       coalesce(f.last_hour, 0) AS failed_last_hour,
       w.oldest_due_at
FROM completed c
FULL JOIN failed f USING (job_type, queue)
FULL JOIN waiting w USING (job_type, queue)
ORDER BY job_type, queue
