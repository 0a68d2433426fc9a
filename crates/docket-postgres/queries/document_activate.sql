-- One statement, so atomic on its own: the generation becomes the active one, and every
-- other generation's texts and chunks go, only if the document is still at that generation.
-- The document is logged for the search index.
WITH activated AS (
    UPDATE documents
    SET active_generation = generation,
        chunk_count = $3,
        token_count = $4,
        embedder = $5,
        embedder_fingerprint = $11,
        chunker_fingerprint = $12,
        timings = CASE WHEN $6::text IS NULL THEN timings
                       ELSE timings || jsonb_build_object($6::text, $7::int8) END,
        status = $8,
        progress = $9,
        error = NULL,
        error_stage = NULL,
        completed_at = CASE WHEN $8 = 'completed' THEN coalesce($10::timestamptz, now())
                            ELSE completed_at END,
        updated_at = coalesce($10::timestamptz, now())
    WHERE id = $1 AND generation = $2 AND status <> 'cancelled'
    RETURNING id, generation
), chunks AS (
    DELETE FROM document_chunks c
    USING activated a
    WHERE c.document_id = a.id AND c.generation <> a.generation
), texts AS (
    DELETE FROM document_texts t
    USING activated a
    WHERE t.document_id = a.id AND t.generation <> a.generation
), clock AS (
    -- Logged for the search index (migration 0007: the row first, then the clock).
    UPDATE search_index_clock SET seq = seq + 1
    WHERE id = 1 AND EXISTS (SELECT 1 FROM activated)
    RETURNING seq
), pruned AS (
    DELETE FROM search_index_log l USING activated a WHERE l.document_id = a.id
), logged AS (
    INSERT INTO search_index_log (seq, document_id) SELECT c.seq, a.id FROM clock c, activated a
)
SELECT id FROM activated
