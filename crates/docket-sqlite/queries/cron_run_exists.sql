-- Step 2 of cron_run_enqueue: was this occurrence already recorded? Then the schedule has
-- moved past it (step 1) but no second job is enqueued. The enqueue holds the write lock from
-- step 1 on, so nothing can record it between this check and cron_run_insert.sql.
SELECT EXISTS (SELECT 1 FROM cron_runs WHERE schedule_name = ?1 AND scheduled_for = ?2)
