-- Embedded chunks of active generations, by id. $1 NULL: every document; $4 NULL: every
-- embedder. (Restricted to chunk ids: chunk_vectors_by_id.)
-- The generation check is a correlated subquery, which PostgreSQL does not turn into a join:
-- the plan walks the primary key in order whatever the statistics say. As a join, a
-- `documents` table not yet analysed (a bulk load) made the planner start from the
-- documents and sort every chunk for each page: 3.4 s a page at a million chunks, 9 ms so.
SELECT c.id, c.document_id, c.embedding
FROM document_chunks c
WHERE c.embedding IS NOT NULL
  AND c.id > $2
  AND ($1::uuid[] IS NULL OR c.document_id = ANY($1::uuid[]))
  AND c.generation = (
      SELECT d.active_generation
      FROM documents d
      WHERE d.id = c.document_id
        AND ($4::text IS NULL OR d.embedder_fingerprint = $4::text)
  )
ORDER BY c.id
LIMIT $3
