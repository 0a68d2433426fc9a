INSERT INTO docket_queues (name, paused_at, updated_at)
VALUES ($1, CASE WHEN $2 THEN coalesce($3::timestamptz, now()) END, coalesce($3::timestamptz, now()))
ON CONFLICT (name) DO UPDATE
SET paused_at = CASE WHEN $2 THEN coalesce(docket_queues.paused_at, EXCLUDED.paused_at) END,
    updated_at = EXCLUDED.updated_at
RETURNING name, paused_at, updated_at
