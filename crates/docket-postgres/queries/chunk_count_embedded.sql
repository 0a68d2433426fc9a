SELECT count(embedding) AS embedded, count(*) AS total
FROM document_chunks
WHERE document_id = $1 AND generation = $2
