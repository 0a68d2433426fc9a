-- Starts re-embedding finished documents whose active vectors another embedder made: a new
-- generation with a copy of the active text, and of the active chunks (without vectors) when
-- they were made by the running chunker. The active generation stays searchable; texts and
-- chunks of any other (an unfinished earlier run) go now. Rows a concurrent caller holds are
-- skipped. $1: embedder fingerprint; $2: chunker fingerprint; $3: limit; $4: now; $5: only
-- ids above this one (NULL: from the start).
WITH picked AS (
    SELECT id
    FROM documents
    WHERE active_generation IS NOT NULL
      AND status IN ('completed', 'failed', 'cancelled')
      AND embedder_fingerprint IS DISTINCT FROM $1
      AND ($5::uuid IS NULL OR id > $5::uuid)
    ORDER BY id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), bumped AS (
    UPDATE documents d
    SET generation = d.generation + 1,
        status = CASE WHEN d.chunker_fingerprint = $2 THEN 'embedding' ELSE 'chunking' END,
        stage = CASE WHEN d.chunker_fingerprint = $2 THEN 'embed' ELSE 'chunk' END,
        progress = CASE WHEN d.chunker_fingerprint = $2 THEN 30 ELSE 20 END,
        error = NULL,
        error_stage = NULL,
        completed_at = NULL,
        generation_embedder = NULL,
        updated_at = coalesce($4::timestamptz, now())
    FROM picked
    WHERE d.id = picked.id
    RETURNING d.*
), old_chunks AS (
    DELETE FROM document_chunks c
    USING bumped b
    WHERE c.document_id = b.id AND c.generation <> b.active_generation
), old_texts AS (
    DELETE FROM document_texts t
    USING bumped b
    WHERE t.document_id = b.id AND t.generation <> b.active_generation
), texts AS (
    INSERT INTO document_texts (document_id, generation, format, text, sections)
    SELECT t.document_id, b.generation, t.format, t.text, t.sections
    FROM document_texts t
    JOIN bumped b ON b.id = t.document_id AND t.generation = b.active_generation
), chunks AS (
    INSERT INTO document_chunks
        (document_id, generation, chunk_index, text, char_start, char_end, token_count,
         heading_path, page)
    SELECT c.document_id, b.generation, c.chunk_index, c.text, c.char_start, c.char_end,
           c.token_count, c.heading_path, c.page
    FROM document_chunks c
    JOIN bumped b ON b.id = c.document_id AND c.generation = b.active_generation
    WHERE b.chunker_fingerprint = $2
)
SELECT * FROM bumped ORDER BY id
