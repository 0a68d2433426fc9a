-- Nearest chunks of active generations by cosine distance (pgvector), all documents: the
-- HNSW index yields the $4 nearest vectors of the query's dimensions from document_chunks
-- alone (ORDER BY distance LIMIT over the index's own expression and predicate, so that
-- nothing above it makes the planner sort instead), then the generation and embedder
-- filters keep the best $2 of those. The caller widens $4 when the filters leave fewer
-- than $2 (chunk_search_exact.sql answers past that). {dims}: the query's dimensions,
-- spelled as vector_index_create spells them; {ext}: the extension's schema, quoted, with
-- its dot. $1: the query as text ('[0.1,0.2]'); $3 NULL: every embedder.
WITH candidates AS MATERIALIZED (
    SELECT c.id, c.document_id, c.generation,
           c.embedding_vec::{ext}vector({dims})
               OPERATOR({ext}<=>) $1::text::{ext}vector({dims}) AS distance
    FROM document_chunks c
    WHERE {ext}vector_dims(c.embedding_vec) = {dims}
    ORDER BY c.embedding_vec::{ext}vector({dims}) OPERATOR({ext}<=>) $1::text::{ext}vector({dims})
    LIMIT $4
)
SELECT c.id, c.document_id, c.distance
FROM candidates c
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE ($3::text IS NULL OR d.embedder_fingerprint = $3::text)
ORDER BY c.distance, c.id
LIMIT $2
