-- Jobs completed (by completed_at) and attempts that dead-lettered their job (by finished_at,
-- counted as in job_activity.sql) per minute from $1 to $2 (default now), oldest first.
WITH t AS (SELECT coalesce($2::timestamptz, now()) AS now),
per_minute AS (
    SELECT date_trunc('minute', completed_at) AS minute, count(*) AS completed, 0 AS failed
    FROM processing_jobs, t
    WHERE status = 'completed'
      AND completed_at >= $1
      AND completed_at <= t.now
    GROUP BY 1
    UNION ALL
    SELECT date_trunc('minute', a.finished_at), 0, count(*)
    FROM job_attempts a
    JOIN processing_jobs j ON j.id = a.job_id
    CROSS JOIN t
    WHERE a.outcome IN ('failed', 'rescued')
      AND (a.outcome = 'failed' OR a.attempt >= j.max_attempts)
      AND a.finished_at >= $1
      AND a.finished_at <= t.now
    GROUP BY 1
)
SELECT minute, sum(completed)::bigint AS completed, sum(failed)::bigint AS failed
FROM per_minute
GROUP BY minute
ORDER BY minute
