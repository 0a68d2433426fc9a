-- Vectors made before fingerprints were recorded take the fingerprint of the embedder of the
-- same name. $1: the name; $2: its fingerprint. The adopted documents are logged for the
-- search index (migration 0007: rows first, then the clock).
WITH adopted AS (
    UPDATE documents
    SET embedder_fingerprint = $2
    WHERE embedder_fingerprint IS NULL AND active_generation IS NOT NULL AND embedder = $1
    RETURNING id
), clock AS (
    UPDATE search_index_clock SET seq = seq + 1
    WHERE id = 1 AND EXISTS (SELECT 1 FROM adopted)
    RETURNING seq
), pruned AS (
    DELETE FROM search_index_log l USING adopted a WHERE l.document_id = a.id
), logged AS (
    INSERT INTO search_index_log (seq, document_id) SELECT c.seq, a.id FROM clock c, adopted a
)
SELECT count(*) FROM adopted
