-- Before job_rescue.sql, in the same savepoint: record each rescued attempt. ?1 is a JSON
-- array of the ids job_rescue_find.sql returned.
INSERT INTO job_attempts
    (job_id, attempt, worker_id, started_at, finished_at, outcome, error, duration_ms)
SELECT id, attempts, coalesce(locked_by, ''), coalesce(started_at, ?2), ?2, 'rescued',
       'lease expired: worker ' || coalesce(locked_by, '?')
           || ' stopped heartbeating (died or lost the database)',
       coalesce(max(0, (?2 - started_at + 500) / 1000), 0)
FROM processing_jobs
WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'running'
