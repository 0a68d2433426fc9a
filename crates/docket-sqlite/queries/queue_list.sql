SELECT name, paused_at, updated_at FROM docket_queues ORDER BY name
