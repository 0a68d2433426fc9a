-- Guarded by generation: a stage of a superseded run changes nothing; nor does any stage
-- change a cancelled document.
UPDATE documents
SET status = $3,
    stage = $4,
    progress = $5,
    timings = CASE WHEN $6::text IS NULL THEN timings
                   ELSE timings || jsonb_build_object($6::text, $7::int8) END,
    error = CASE WHEN $3 = 'failed' THEN error END,
    error_stage = CASE WHEN $3 = 'failed' THEN error_stage END,
    completed_at = CASE WHEN $3 = 'completed'
                        THEN coalesce(completed_at, coalesce($8::timestamptz, now()))
                        ELSE completed_at END,
    updated_at = coalesce($8::timestamptz, now())
WHERE id = $1 AND generation = $2 AND status <> 'cancelled'
