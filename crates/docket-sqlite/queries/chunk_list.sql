-- ?2 NULL: the active generation (none while nothing is active).
SELECT c.id, c.document_id, c.generation, c.chunk_index, c.text, c.char_start, c.char_end,
       c.token_count, c.heading_path, c.page, c.embedding IS NOT NULL AS has_embedding
FROM document_chunks c
WHERE c.document_id = ?1
  AND c.generation = coalesce(?2, (SELECT active_generation FROM documents WHERE id = ?1))
ORDER BY c.chunk_index
LIMIT ?3 OFFSET ?4
