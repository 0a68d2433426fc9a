-- Unfinished (and not cancelled) documents unchanged since $1 that no live job works on. A document's stage jobs
-- have unique keys 'document:<id>:<stage>'; comparing the key's fixed-length prefix by
-- equality lets the planner hash the live jobs once instead of scanning them per document.
SELECT d.*
FROM documents d
WHERE d.status NOT IN ('completed', 'failed', 'cancelled')
  AND d.updated_at < $1
  AND NOT EXISTS (
      SELECT 1
      FROM processing_jobs j
      WHERE j.status IN ('queued', 'running', 'retrying')
        AND j.unique_key IS NOT NULL
        AND left(j.unique_key, 46) = 'document:' || d.id::text || ':'
  )
ORDER BY d.updated_at, d.id
LIMIT $2
