-- A new generation. The active one stays searchable until the new one is activated; the
-- texts and chunks of any other (an unfinished earlier run) go now.
WITH bumped AS (
    UPDATE documents
    SET generation = generation + 1,
        status = 'queued',
        progress = 0,
        stage = NULL,
        error = NULL,
        error_stage = NULL,
        timings = '{}'::jsonb,
        completed_at = NULL,
        generation_embedder = NULL,
        updated_at = coalesce($2::timestamptz, now())
    WHERE id = $1
    RETURNING *
), chunks AS (
    DELETE FROM document_chunks c
    USING bumped b
    WHERE c.document_id = b.id AND c.generation IS DISTINCT FROM b.active_generation
), texts AS (
    DELETE FROM document_texts t
    USING bumped b
    WHERE t.document_id = b.id AND t.generation IS DISTINCT FROM b.active_generation
)
SELECT * FROM bumped
