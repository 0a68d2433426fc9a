-- Rows of dead workers (their own lease lapsed before ?1) holding no running job: those jobs
-- belong to the rescuer first, and the row goes on the pass after.
DELETE FROM docket_workers AS w
WHERE heartbeat_at + lease_ms * 1000 < ?1
  AND NOT EXISTS (
      SELECT 1 FROM processing_jobs j
      WHERE j.status = 'running' AND j.locked_by IS NOT NULL AND j.locked_by = w.id)
