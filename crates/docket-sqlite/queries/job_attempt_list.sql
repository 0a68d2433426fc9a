-- Oldest first. By id, not attempt number: a manual retry restarts the numbering.
SELECT * FROM job_attempts WHERE job_id = ?1 ORDER BY id
