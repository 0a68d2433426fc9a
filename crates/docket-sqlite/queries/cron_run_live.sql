-- Step 1b of a manual cron_run_enqueue: is a run of the schedule live, i.e. still open with its
-- job queued, running or retrying? (The job decides; the run's own status lags until the next
-- cron_run_sync.) A live run refuses the manual one. The enqueue holds the write lock, so no
-- run can start between this check and the insert.
SELECT EXISTS (
    SELECT 1
    FROM cron_runs AS r
    JOIN processing_jobs AS j ON j.id = r.job_id
    WHERE r.schedule_name = ?1
      AND r.status IN ('enqueued', 'queued', 'running', 'retrying')
      AND j.status IN ('queued', 'running', 'retrying')
)
