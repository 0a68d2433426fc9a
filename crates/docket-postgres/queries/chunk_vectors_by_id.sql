-- chunk_vectors_page restricted to chunk ids $5: driven from the ids (an index lookup each),
-- not from a walk of the primary key in order. Other parameters as chunk_vectors_page.
SELECT c.id, c.document_id, c.embedding
FROM unnest($5::int8[]) AS wanted(id)
JOIN document_chunks c ON c.id = wanted.id
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE c.embedding IS NOT NULL
  AND c.id > $2
  AND ($1::uuid[] IS NULL OR c.document_id = ANY($1::uuid[]))
  AND ($4::text IS NULL OR d.embedder_fingerprint = $4::text)
ORDER BY c.id
LIMIT $3
