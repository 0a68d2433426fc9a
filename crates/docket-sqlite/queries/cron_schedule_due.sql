-- The enabled schedules due at ?1 (the caller's time, or the process clock: SQLite has no
-- other host to agree with), by name.
SELECT *
FROM cron_schedules
WHERE enabled AND next_run_at <= ?1
ORDER BY name
