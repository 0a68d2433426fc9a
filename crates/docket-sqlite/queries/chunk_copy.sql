-- Step 4 of document_reembed: document ?1's chunks of generation ?2, copied without vectors to
-- generation ?3.
INSERT INTO document_chunks
    (document_id, generation, chunk_index, text, char_start, char_end, token_count,
     heading_path, page)
SELECT document_id, ?3, chunk_index, text, char_start, char_end, token_count, heading_path, page
FROM document_chunks
WHERE document_id = ?1 AND generation = ?2
ORDER BY chunk_index
