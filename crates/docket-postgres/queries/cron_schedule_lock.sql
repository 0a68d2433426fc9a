-- Before a manual run: holds the schedule's row until the run's transaction ends, so that the
-- "is a run live?" check of cron_run_enqueue.sql, a statement of its own that starts after the
-- lock is granted, sees every run enqueued before (READ COMMITTED takes a snapshot per
-- statement). Two manual runs at once: the second waits here, then finds the first one live.
SELECT name FROM cron_schedules WHERE name = $1 FOR UPDATE
