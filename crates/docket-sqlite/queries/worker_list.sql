SELECT * FROM docket_workers ORDER BY heartbeat_at DESC, id
