-- ?4 is a JSON array of queue names; ?6 the worker's lease in milliseconds: it is dead once
-- heartbeat_at + lease_ms * 1000 (microseconds) passes.
INSERT INTO docket_workers (id, hostname, pid, queues, started_at, heartbeat_at, lease_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
ON CONFLICT (id) DO UPDATE
SET heartbeat_at = excluded.heartbeat_at, queues = excluded.queues, lease_ms = excluded.lease_ms
