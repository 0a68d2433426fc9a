-- $6 is the worker's lease in milliseconds: it is dead once heartbeat_at + lease_ms passes.
INSERT INTO docket_workers (id, hostname, pid, queues, started_at, heartbeat_at, lease_ms)
VALUES ($1, $2, $3, $4, coalesce($5::timestamptz, now()), coalesce($5::timestamptz, now()), $6)
ON CONFLICT (id) DO UPDATE
SET heartbeat_at = EXCLUDED.heartbeat_at, queues = EXCLUDED.queues, lease_ms = EXCLUDED.lease_ms
