-- Backfill of embedding_vec when the column is added: a page of stored vectors, by id.
SELECT id, embedding
FROM document_chunks
WHERE embedding IS NOT NULL AND id > $1
ORDER BY id
LIMIT $2
