SELECT * FROM cron_schedules ORDER BY name
