-- Rows of dead workers (their own lease lapsed before $1, default now) holding no running
-- job: those jobs belong to the rescuer first, and the row goes on the pass after.
DELETE FROM docket_workers w
WHERE w.heartbeat_at + w.lease_ms * interval '1 millisecond' < coalesce($1::timestamptz, now())
  AND NOT EXISTS (
      SELECT 1 FROM processing_jobs j
      WHERE j.status = 'running' AND j.locked_by IS NOT NULL AND j.locked_by = w.id)
