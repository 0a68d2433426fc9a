INSERT INTO cron_schedules
    (name, expression, timezone, job_type, queue, payload, priority, enabled, missed_policy, next_run_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (name) DO UPDATE
SET next_run_at = CASE WHEN cron_schedules.expression = EXCLUDED.expression
                        AND cron_schedules.timezone = EXCLUDED.timezone
                       THEN cron_schedules.next_run_at ELSE EXCLUDED.next_run_at END,
    expression = EXCLUDED.expression,
    timezone = EXCLUDED.timezone,
    job_type = EXCLUDED.job_type,
    queue = EXCLUDED.queue,
    payload = EXCLUDED.payload,
    priority = EXCLUDED.priority,
    enabled = EXCLUDED.enabled,
    missed_policy = EXCLUDED.missed_policy,
    updated_at = now()
RETURNING *
