-- The job holding each key of the JSON array ?1: the live one if any, else the newest.
SELECT k.value AS unique_key,
       (SELECT id FROM processing_jobs
        WHERE unique_key = k.value
        ORDER BY status IN ('queued', 'running', 'retrying') DESC, id DESC
        LIMIT 1) AS id
FROM json_each(?1) AS k
