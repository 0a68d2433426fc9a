-- ?1 is a JSON array of [id, embedding as hex] pairs (JSON has no bytes).
UPDATE document_chunks AS c
SET embedding = unhex(e.value ->> 1)
FROM json_each(?1) AS e
WHERE c.id = e.value ->> 0
