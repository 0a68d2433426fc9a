-- Jobs completed (by completed_at) and attempts that dead-lettered their job (by finished_at,
-- counted as in job_activity.sql) per minute from ?1 to ?2, oldest first (times in
-- microseconds; a minute is 60,000,000 of them).
WITH per_minute (minute, completed, failed) AS (
    SELECT (completed_at / 60000000) * 60000000, count(*), 0
    FROM processing_jobs
    WHERE status = 'completed'
      AND completed_at >= ?1
      AND completed_at <= ?2
    GROUP BY 1
    UNION ALL
    SELECT (a.finished_at / 60000000) * 60000000, 0, count(*)
    FROM job_attempts a
    JOIN processing_jobs j ON j.id = a.job_id
    WHERE a.outcome IN ('failed', 'rescued')
      AND (a.outcome = 'failed' OR a.attempt >= j.max_attempts)
      AND a.finished_at >= ?1
      AND a.finished_at <= ?2
    GROUP BY 1
)
SELECT minute, sum(completed) AS completed, sum(failed) AS failed
FROM per_minute
GROUP BY minute
ORDER BY minute
