-- The enabled schedules due at $1, or at the database's clock when $1 is NULL (so that every
-- node, whatever its own clock says, agrees on when a schedule comes due, and the times the
-- run rows record come from the same clock). The clock row comes back even when nothing is
-- due (its schedule columns NULL): the scheduler plans the occurrences from that time.
WITH clock AS (
    SELECT coalesce($1::timestamptz, now()) AS due_at
)
SELECT clock.due_at, s.*
FROM clock
LEFT JOIN cron_schedules s ON s.enabled AND s.next_run_at <= clock.due_at
ORDER BY s.name
