-- An unchanged expression and time zone keep the stored next_run_at.
INSERT INTO cron_schedules
    (name, expression, timezone, job_type, queue, payload, priority, enabled, missed_policy,
     next_run_at, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
ON CONFLICT (name) DO UPDATE
SET next_run_at = CASE WHEN cron_schedules.expression = excluded.expression
                        AND cron_schedules.timezone = excluded.timezone
                       THEN cron_schedules.next_run_at ELSE excluded.next_run_at END,
    expression = excluded.expression,
    timezone = excluded.timezone,
    job_type = excluded.job_type,
    queue = excluded.queue,
    payload = excluded.payload,
    priority = excluded.priority,
    enabled = excluded.enabled,
    missed_policy = excluded.missed_policy,
    updated_at = excluded.updated_at
RETURNING *
