-- Step 1 of chunk_replace, in the same transaction: the generation's chunks go.
DELETE FROM document_chunks WHERE document_id = $1 AND generation = $2
