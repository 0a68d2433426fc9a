-- Embedded chunks of active generations, by id. ?1: a JSON array of document ids, or NULL
-- for every document. ?4: only documents whose active vectors this embedder made (NULL: any).
-- (Restricted to chunk ids: chunk_vectors_by_id.)
SELECT c.id, c.document_id, c.embedding
FROM document_chunks c
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE c.embedding IS NOT NULL
  AND c.id > ?2
  AND (?1 IS NULL OR c.document_id IN (SELECT value FROM json_each(?1)))
  AND (?4 IS NULL OR d.embedder_fingerprint = ?4)
ORDER BY c.id
LIMIT ?3
