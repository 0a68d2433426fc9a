-- Embedded chunks of active generations, by id. $1 NULL: every document; $4 NULL: every
-- embedder. (Restricted to chunk ids: chunk_vectors_by_id.)
SELECT c.id, c.document_id, c.embedding
FROM document_chunks c
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE c.embedding IS NOT NULL
  AND c.id > $2
  AND ($1::uuid[] IS NULL OR c.document_id = ANY($1::uuid[]))
  AND ($4::text IS NULL OR d.embedder_fingerprint = $4::text)
ORDER BY c.id
LIMIT $3
