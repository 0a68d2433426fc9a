-- Backfill of embedding_vec: the `vector` of each chunk of a page (from its text; NULL for a
-- vector pgvector cannot hold). {ext}: the extension's schema, quoted, with its dot.
UPDATE document_chunks c
SET embedding_vec = t.vec::{ext}vector
FROM unnest($1::int8[], $2::text[]) AS t(id, vec)
WHERE c.id = t.id
