-- Step 1 of document_reprocess: a new generation. The active one stays searchable until the
-- new one is activated; step 2 (same transaction) drops the texts and chunks of any other.
UPDATE documents
SET generation = generation + 1,
    status = 'queued',
    progress = 0,
    stage = NULL,
    error = NULL,
    error_stage = NULL,
    timings = '{}',
    completed_at = NULL,
    generation_embedder = NULL,
    updated_at = ?2
WHERE id = ?1
RETURNING *
