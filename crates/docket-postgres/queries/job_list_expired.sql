-- Running jobs whose worker stopped heartbeating ($2 seconds of lease), or whose worker row is
-- gone: the rescuer's candidates. The engine decides what becomes of each.
SELECT j.*
FROM processing_jobs j
LEFT JOIN docket_workers w ON w.id = j.locked_by
WHERE j.status = 'running' AND j.locked_by IS NOT NULL
  AND (w.id IS NULL
       OR w.heartbeat_at < coalesce($1::timestamptz, now()) - $2::float8 * interval '1 second')
ORDER BY j.id
LIMIT $3
