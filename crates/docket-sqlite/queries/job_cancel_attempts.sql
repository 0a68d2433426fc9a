-- Before job_cancel.sql, in the same savepoint: a running attempt ends here, and its worker's
-- completion will be refused. ?1 is a JSON array of ids.
INSERT INTO job_attempts
    (job_id, attempt, worker_id, started_at, finished_at, outcome, error, duration_ms)
SELECT id, attempts, coalesce(locked_by, ''), coalesce(started_at, ?2), ?2,
       'cancelled', 'cancelled while running',
       coalesce(max(0, (?2 - started_at + 500) / 1000), 0)
FROM processing_jobs
WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'running'
