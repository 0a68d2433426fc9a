-- Attempts that finished in [?1, ?2), per kind, queue and outcome, with nearest-rank
-- percentiles of their durations: the p-th is the ceil(p * n / 100)-th shortest.
WITH a AS (
    SELECT j.job_type, j.queue, a.outcome, a.duration_ms,
           row_number() OVER w AS rn,
           count(*) OVER (PARTITION BY j.job_type, j.queue, a.outcome) AS n
    FROM job_attempts a
    JOIN processing_jobs j ON j.id = a.job_id
    WHERE a.finished_at >= ?1
      AND a.finished_at < ?2
    WINDOW w AS (PARTITION BY j.job_type, j.queue, a.outcome ORDER BY a.duration_ms)
)
SELECT ?1 AS hour, job_type, queue, outcome,
       count(*) AS attempts,
       sum(duration_ms) AS total_ms,
       max(CASE WHEN rn = (n * 50 + 99) / 100 THEN duration_ms END) AS p50_ms,
       max(CASE WHEN rn = (n * 95 + 99) / 100 THEN duration_ms END) AS p95_ms,
       max(CASE WHEN rn = (n * 99 + 99) / 100 THEN duration_ms END) AS p99_ms,
       max(duration_ms) AS max_ms
FROM a
GROUP BY job_type, queue, outcome
ORDER BY job_type, queue, outcome
