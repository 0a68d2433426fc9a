-- Nearest chunks of active generations by cosine distance (pgvector), exactly: every vector
-- of the query's dimensions in the named documents ($2), or in all of them ($2 NULL) when
-- the index's candidates ran out (chunk_search.sql). The chunks are gathered first, through
-- the (document_id, generation, …) key, and only then ordered, so that the planner cannot
-- trade the filters for an index scan that stops after ef_search rows. {dims}, {ext} and $1 as in
-- chunk_search.sql; $3: k; $4 NULL: every embedder.
WITH scoped AS MATERIALIZED (
    SELECT c.id, c.document_id,
           c.embedding_vec::{ext}vector({dims})
               OPERATOR({ext}<=>) $1::text::{ext}vector({dims}) AS distance
    FROM documents d
    JOIN document_chunks c ON c.document_id = d.id AND c.generation = d.active_generation
    WHERE ($2::uuid[] IS NULL OR d.id = ANY($2::uuid[]))
      AND ($4::text IS NULL OR d.embedder_fingerprint = $4::text)
      AND {ext}vector_dims(c.embedding_vec) = {dims}
)
SELECT id, document_id, distance
FROM scoped
ORDER BY distance, id
LIMIT $3
