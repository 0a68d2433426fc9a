-- Embedded chunks of active generations, by id. ?1: a JSON array of document ids, or NULL
-- for every document.
SELECT c.id, c.document_id, c.embedding
FROM document_chunks c
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE c.embedding IS NOT NULL
  AND c.id > ?2
  AND (?1 IS NULL OR c.document_id IN (SELECT value FROM json_each(?1)))
ORDER BY c.id
LIMIT ?3
