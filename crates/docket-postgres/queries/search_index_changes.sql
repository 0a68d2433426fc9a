-- Changes to what vector search ranks after the cursor ($1 clock number, $2 document id), in
-- clock order: each document's state now (NULL columns: deleted).
SELECT l.seq, l.document_id, coalesce(d.active_generation IS NOT NULL, false) AS searchable,
       d.embedder_fingerprint, coalesce(d.chunk_count, 0)::int8 AS chunk_count
FROM search_index_log l
LEFT JOIN documents d ON d.id = l.document_id
WHERE (l.seq, l.document_id) > ($1, $2)
ORDER BY l.seq, l.document_id
LIMIT $3
