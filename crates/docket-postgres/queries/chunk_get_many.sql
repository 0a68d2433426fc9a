SELECT c.id, c.document_id, c.generation, c.chunk_index, c.text, c.char_start, c.char_end,
       c.token_count, c.heading_path, c.page, c.embedding IS NOT NULL AS has_embedding
FROM document_chunks c
WHERE c.id = ANY($1::int8[])
ORDER BY c.id
