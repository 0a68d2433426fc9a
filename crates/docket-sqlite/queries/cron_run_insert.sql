-- Step 4 of cron_run_enqueue (after the job, if any, by job_insert.sql): the run row, with
-- status 'enqueued'; 'skipped' when the missed-run policy enqueued no job; 'invalid' when the
-- stored schedule could not run; 'duplicate' when a live job already held the job's unique key.
-- job_id is NULL in the last three.
INSERT INTO cron_runs (schedule_name, scheduled_for, job_id, status, message, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (schedule_name, scheduled_for) DO NOTHING
RETURNING *
