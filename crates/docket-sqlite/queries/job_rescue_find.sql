-- Running jobs whose worker stopped heartbeating (its own lease lapsed before ?1), or whose
-- worker row is gone. ?2 is the batch size.
SELECT j.id
FROM processing_jobs j
LEFT JOIN docket_workers w ON w.id = j.locked_by
WHERE j.status = 'running' AND j.locked_by IS NOT NULL
  AND (w.id IS NULL OR w.heartbeat_at + w.lease_ms * 1000 < ?1)
ORDER BY j.id
LIMIT ?2
