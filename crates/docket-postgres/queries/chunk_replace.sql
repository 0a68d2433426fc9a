-- Step 2 of chunk_replace: the new chunks, in one statement.
INSERT INTO document_chunks
    (document_id, generation, chunk_index, text, char_start, char_end, token_count,
     heading_path, page)
SELECT $1, $2, t.chunk_index, t.text, t.char_start, t.char_end, t.token_count,
       t.heading_path, t.page
FROM unnest($3::int4[], $4::text[], $5::int4[], $6::int4[], $7::int4[], $8::jsonb[],
            $9::int4[])
     AS t(chunk_index, text, char_start, char_end, token_count, heading_path, page)
ORDER BY t.chunk_index
