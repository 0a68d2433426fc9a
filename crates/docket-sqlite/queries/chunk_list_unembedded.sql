SELECT c.id, c.document_id, c.generation, c.chunk_index, c.text, c.char_start, c.char_end,
       c.token_count, c.heading_path, c.page, 0 AS has_embedding
FROM document_chunks c
WHERE c.document_id = ?1 AND c.generation = ?2 AND c.embedding IS NULL
ORDER BY c.chunk_index
LIMIT ?3
