-- The job holding each key: the live one if any, else the newest.
SELECT DISTINCT ON (unique_key) unique_key, id
FROM processing_jobs
WHERE unique_key = ANY($1::text[])
ORDER BY unique_key, (status IN ('queued', 'running', 'retrying')) DESC, id DESC
