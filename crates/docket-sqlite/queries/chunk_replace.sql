-- Step 2 of chunk_replace: the new chunks, in one statement. ?3 is a JSON array with one
-- array per chunk: [chunk_index, text, char_start, char_end, token_count, heading_path, page].
INSERT INTO document_chunks
    (document_id, generation, chunk_index, text, char_start, char_end, token_count,
     heading_path, page)
SELECT ?1, ?2, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4,
       value -> 5, value ->> 6
FROM json_each(?3)
ORDER BY key
