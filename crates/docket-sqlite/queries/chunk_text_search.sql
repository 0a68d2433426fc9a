-- Chunks of active generations matching an FTS5 query, best (lowest bm25) first. ?1: the
-- query ("term" OR "term" …, built from the words alone); ?2: a JSON array of document ids, or
-- NULL for every document; ?3: limit.
SELECT c.id, c.document_id, -bm25(document_chunks_fts) AS score
FROM document_chunks_fts
JOIN document_chunks c ON c.id = document_chunks_fts.rowid
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE document_chunks_fts MATCH ?1
  AND (?2 IS NULL OR c.document_id IN (SELECT value FROM json_each(?2)))
ORDER BY bm25(document_chunks_fts), c.id
LIMIT ?3
