-- chunk_vectors_page restricted to documents ?1 (a JSON array): driven from the documents
-- (their chunks by the (document_id, generation, chunk_index) index), not from a walk of every
-- chunk above ?2; for a few documents (every page reads and sorts all their chunks). Other
-- parameters as chunk_vectors_page.
SELECT c.id, c.document_id, c.embedding
FROM (SELECT DISTINCT value FROM json_each(?1)) j
CROSS JOIN documents d ON d.id = j.value
CROSS JOIN document_chunks c ON c.document_id = d.id AND c.generation = d.active_generation
WHERE c.embedding IS NOT NULL
  AND c.id > ?2
  AND (?4 IS NULL OR d.embedder_fingerprint = ?4)
ORDER BY c.id
LIMIT ?3
