-- Workers, most recent heartbeat first; dead: its own lease had lapsed at $1 (default now).
SELECT w.*,
       w.heartbeat_at + w.lease_ms * interval '1 millisecond' < coalesce($1::timestamptz, now()) AS dead
FROM docket_workers w
ORDER BY w.heartbeat_at DESC, w.id
