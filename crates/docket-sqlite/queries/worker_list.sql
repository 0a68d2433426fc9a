-- Workers, most recent heartbeat first; dead: its own lease had lapsed at ?1.
SELECT *, heartbeat_at + lease_ms * 1000 < ?1 AS dead
FROM docket_workers
ORDER BY heartbeat_at DESC, id
