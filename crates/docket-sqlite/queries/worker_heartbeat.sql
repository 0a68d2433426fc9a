-- ?4 is a JSON array of queue names.
INSERT INTO docket_workers (id, hostname, pid, queues, started_at, heartbeat_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?5)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, queues = excluded.queues
