-- Attempts that finished from $1 to $2 (default now), per kind, queue, outcome, and whether
-- they were snoozes (released by the handler, with its reason; a release at shutdown records
-- 'released on shutdown').
SELECT j.job_type,
       j.queue,
       a.outcome,
       (a.outcome = 'released' AND coalesce(a.error, 'released on shutdown') <> 'released on shutdown')
           AS snoozed,
       count(*) AS count
FROM job_attempts a
JOIN processing_jobs j ON j.id = a.job_id
WHERE a.finished_at >= $1
  AND a.finished_at <= coalesce($2::timestamptz, now())
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
