-- chunk_vectors_page restricted to documents $1: driven from the documents (their chunks by
-- the (document_id, generation, chunk_index) index), not from a walk of the primary key in
-- order; for a few documents (every page reads and sorts all their chunks). Other parameters
-- as chunk_vectors_page.
WITH scope AS MATERIALIZED (
    SELECT c.id, c.document_id, c.embedding
    FROM documents d
    JOIN document_chunks c ON c.document_id = d.id AND c.generation = d.active_generation
    WHERE d.id = ANY($1::uuid[])
      AND c.embedding IS NOT NULL
      AND c.id > $2
      AND ($4::text IS NULL OR d.embedder_fingerprint = $4::text)
)
SELECT id, document_id, embedding FROM scope ORDER BY id LIMIT $3
