-- ?1 is a JSON array with one array per job:
-- [job_type, queue, priority, payload, max_attempts, run_at, unique_key, document_id].
-- Rows are inserted in input order (ORDER BY key), so their ids increase in input order; a
-- job whose unique key a live job holds is skipped and returns no row. (WHERE true keeps
-- SQLite from reading ON CONFLICT as a join constraint.)
INSERT INTO processing_jobs
    (job_type, queue, priority, payload, max_attempts, run_at, unique_key, document_id,
     status, created_at, updated_at)
SELECT value ->> 0, value ->> 1, value ->> 2, value -> 3, value ->> 4,
       coalesce(value ->> 5, ?2), value ->> 6, value ->> 7, 'queued', ?2, ?2
FROM json_each(?1)
WHERE true
ORDER BY key
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('queued', 'running', 'retrying')
    DO NOTHING
RETURNING id, unique_key
