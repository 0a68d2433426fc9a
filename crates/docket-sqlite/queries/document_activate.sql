-- Step 1 of document_activate: the generation becomes the active one, only if the document is
-- still at it. Steps 2 and 3 (same transaction) delete the other generations.
UPDATE documents
SET active_generation = generation,
    chunk_count = ?3,
    token_count = ?4,
    embedder = ?5,
    embedder_fingerprint = ?11,
    chunker_fingerprint = ?12,
    timings = CASE WHEN ?6 IS NULL THEN timings
                   ELSE json_patch(timings, json_object(?6, ?7)) END,
    status = ?8,
    progress = ?9,
    error = NULL,
    error_stage = NULL,
    completed_at = CASE WHEN ?8 = 'completed' THEN ?10 ELSE completed_at END,
    updated_at = ?10
WHERE id = ?1 AND generation = ?2 AND status <> 'cancelled'
RETURNING id
