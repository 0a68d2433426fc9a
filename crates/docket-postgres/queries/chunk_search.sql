-- Nearest chunks of active generations by cosine distance (pgvector). {dims}: the query's
-- dimensions, spelled as vector_index_create spells them so that its index applies; {ext}:
-- the extension's schema, quoted, with its dot. $1: the query as text ('[0.1,0.2]');
-- $2 NULL: every document; $4 NULL: every embedder.
SELECT c.id, c.document_id,
       c.embedding_vec::{ext}vector({dims})
           OPERATOR({ext}<=>) $1::text::{ext}vector({dims}) AS distance
FROM document_chunks c
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE {ext}vector_dims(c.embedding_vec) = {dims}
  AND ($2::uuid[] IS NULL OR c.document_id = ANY($2::uuid[]))
  AND ($4::text IS NULL OR d.embedder_fingerprint = $4::text)
ORDER BY c.embedding_vec::{ext}vector({dims}) OPERATOR({ext}<=>) $1::text::{ext}vector({dims})
LIMIT $3
