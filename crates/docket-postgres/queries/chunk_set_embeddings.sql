UPDATE document_chunks c
SET embedding = t.embedding
FROM unnest($1::int8[], $2::bytea[]) AS t(id, embedding)
WHERE c.id = t.id
