-- Guarded by generation: a stage of a superseded run changes nothing; nor does any stage
-- change a cancelled document. ?6/?7: a timing to
-- merge into timings (?6 NULL for none).
UPDATE documents
SET status = ?3,
    stage = ?4,
    progress = ?5,
    timings = CASE WHEN ?6 IS NULL THEN timings
                   ELSE json_patch(timings, json_object(?6, ?7)) END,
    error = CASE WHEN ?3 = 'failed' THEN error END,
    error_stage = CASE WHEN ?3 = 'failed' THEN error_stage END,
    completed_at = CASE WHEN ?3 = 'completed' THEN coalesce(completed_at, ?8)
                        ELSE completed_at END,
    updated_at = ?8
WHERE id = ?1 AND generation = ?2 AND status <> 'cancelled'
