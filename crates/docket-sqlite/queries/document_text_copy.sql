-- Step 3 of document_reembed: document ?1's text of generation ?2, copied to generation ?3.
INSERT INTO document_texts (document_id, generation, format, text, sections)
SELECT document_id, ?3, format, text, sections
FROM document_texts
WHERE document_id = ?1 AND generation = ?2
