-- Pausing keeps the first pause time; resuming clears it.
INSERT INTO docket_queues (name, paused_at, updated_at)
VALUES (?1, CASE WHEN ?2 THEN ?3 END, ?3)
ON CONFLICT (name) DO UPDATE
SET paused_at = CASE WHEN ?2 THEN coalesce(docket_queues.paused_at, excluded.paused_at) END,
    updated_at = excluded.updated_at
RETURNING name, paused_at, updated_at
