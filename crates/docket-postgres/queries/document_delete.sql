-- Deletes a document (its texts and chunks cascade) and logs the deletion for the search
-- index (migration 0007: the row first, then the clock).
WITH gone AS (
    DELETE FROM documents WHERE id = $1 RETURNING id
), clock AS (
    UPDATE search_index_clock SET seq = seq + 1
    WHERE id = 1 AND EXISTS (SELECT 1 FROM gone)
    RETURNING seq
), pruned AS (
    DELETE FROM search_index_log l USING gone g WHERE l.document_id = g.id
), logged AS (
    INSERT INTO search_index_log (seq, document_id) SELECT c.seq, g.id FROM clock c, gone g
)
SELECT count(*) FROM gone
