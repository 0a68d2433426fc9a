-- chunk_set_embeddings where pgvector is installed: the portable bytes and the `vector`
-- (from its text, '[0.1,0.2]'; NULL for a vector pgvector cannot hold). {ext}: the
-- extension's schema, quoted, with its dot.
UPDATE document_chunks c
SET embedding = t.embedding,
    embedding_vec = t.vec::{ext}vector
FROM unnest($1::int8[], $2::bytea[], $3::text[]) AS t(id, embedding, vec)
WHERE c.id = t.id
