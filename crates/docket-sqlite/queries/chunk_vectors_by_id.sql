-- chunk_vectors_page restricted to chunk ids ?5 (a JSON array): driven from the ids (a lookup
-- each), not from a walk of every chunk above ?2. Other parameters as chunk_vectors_page.
SELECT c.id, c.document_id, c.embedding
FROM json_each(?5) j
CROSS JOIN document_chunks c ON c.id = j.value
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE c.embedding IS NOT NULL
  AND c.id > ?2
  AND (?1 IS NULL OR c.document_id IN (SELECT value FROM json_each(?1)))
  AND (?4 IS NULL OR d.embedder_fingerprint = ?4)
ORDER BY c.id
LIMIT ?3
