-- The stuck_jobs view at ?1: running jobs whose worker's own lease has lapsed, or whose worker
-- row is gone; what job_rescue_find.sql finds. Newest job first, at most ?2. Reached through
-- processing_jobs_running_idx.
SELECT j.*,
       w.heartbeat_at AS worker_heartbeat_at,
       w.lease_ms AS worker_lease_ms,
       ?1 AS read_at
FROM processing_jobs j
LEFT JOIN docket_workers w ON w.id = j.locked_by
WHERE j.status = 'running' AND j.locked_by IS NOT NULL
  AND (w.id IS NULL OR w.heartbeat_at + w.lease_ms * 1000 < ?1)
ORDER BY j.id DESC
LIMIT ?2
