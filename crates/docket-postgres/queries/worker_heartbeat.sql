INSERT INTO docket_workers (id, hostname, pid, queues, started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, coalesce($5::timestamptz, now()), coalesce($5::timestamptz, now()))
ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at, queues = EXCLUDED.queues
