-- chunk_vectors_page restricted to chunk ids $5: driven from the ids, an index lookup each
-- (the LATERAL with OFFSET 0 keeps the planner from turning it into a walk of the primary key
-- in order, or a hash join over every chunk of every document: with the statistics of a
-- table not yet analysed after a bulk load, the join took 145 ms where the lookups take
-- 0.5). Other parameters as chunk_vectors_page.
WITH c AS MATERIALIZED (
  SELECT c.id, c.document_id, c.generation, c.embedding
  FROM unnest($5::int8[]) AS wanted(id)
  CROSS JOIN LATERAL (
    SELECT c.id, c.document_id, c.generation, c.embedding
    FROM document_chunks c
    WHERE c.id = wanted.id
    OFFSET 0
  ) c
)
SELECT c.id, c.document_id, c.embedding
FROM c
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE c.embedding IS NOT NULL
  AND c.id > $2
  AND ($1::uuid[] IS NULL OR c.document_id = ANY($1::uuid[]))
  AND ($4::text IS NULL OR d.embedder_fingerprint = $4::text)
ORDER BY c.id
LIMIT $3
