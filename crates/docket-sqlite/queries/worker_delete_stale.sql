-- Only workers that hold no running job: those jobs belong to the rescuer first.
DELETE FROM docket_workers AS w
WHERE heartbeat_at < ?1
  AND NOT EXISTS (
      SELECT 1 FROM processing_jobs j WHERE j.status = 'running' AND j.locked_by IS NOT NULL AND j.locked_by = w.id)
