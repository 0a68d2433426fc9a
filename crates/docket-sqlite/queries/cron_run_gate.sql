-- Step 1 of cron_run_enqueue: advance the schedule, only if nobody has (?4 is the expected
-- next_run_at). ?4 NULL is a manual run, which leaves the schedule where it is but still
-- requires it to exist. last_run_at names the occurrence most recently enqueued, so a skipped
-- occurrence (?6 false: no job) leaves it.
UPDATE cron_schedules
SET next_run_at = CASE WHEN ?4 IS NULL THEN next_run_at ELSE ?3 END,
    last_run_at = CASE WHEN ?4 IS NULL OR NOT ?6 THEN last_run_at ELSE ?2 END,
    updated_at = ?5
WHERE name = ?1 AND (?4 IS NULL OR next_run_at = ?4)
RETURNING name
