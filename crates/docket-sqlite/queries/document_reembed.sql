-- Step 1 of document_reembed: new generations for up to ?3 finished documents whose active
-- vectors another embedder made (?1: the running embedder's fingerprint), oldest first, with
-- ids above ?5 (NULL: from the start);
-- `embedding` when their chunks were made by the running chunker (?2), else `chunking`.
-- Steps 2 to 4 (same transaction) drop other generations and copy the active text (and
-- chunks) into the new one.
UPDATE documents
SET generation = generation + 1,
    status = CASE WHEN chunker_fingerprint IS ?2 THEN 'embedding' ELSE 'chunking' END,
    stage = CASE WHEN chunker_fingerprint IS ?2 THEN 'embed' ELSE 'chunk' END,
    progress = CASE WHEN chunker_fingerprint IS ?2 THEN 30 ELSE 20 END,
    error = NULL,
    error_stage = NULL,
    completed_at = NULL,
    generation_embedder = NULL,
    updated_at = ?4
WHERE id IN (SELECT id FROM documents
             WHERE active_generation IS NOT NULL
               AND status IN ('completed', 'failed', 'cancelled')
               AND embedder_fingerprint IS NOT ?1
               AND (?5 IS NULL OR id > ?5)
             ORDER BY id
             LIMIT ?3)
RETURNING *
