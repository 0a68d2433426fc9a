SELECT *
FROM cron_runs
WHERE ?1 IS NULL OR schedule_name = ?1
ORDER BY scheduled_for DESC, id DESC
LIMIT ?2
