-- Chunks of active generations matching a text query, best first. $1: the words, joined by
-- ' | ' (built from letters and digits alone); $2 NULL: every document; $3: limit.
SELECT c.id, c.document_id, ts_rank_cd(c.text_tsv, q)::float8 AS score
FROM to_tsquery('english', $1) q,
     document_chunks c
JOIN documents d ON d.id = c.document_id AND d.active_generation = c.generation
WHERE c.text_tsv @@ q
  AND ($2::uuid[] IS NULL OR c.document_id = ANY($2::uuid[]))
ORDER BY score DESC, c.id
LIMIT $3
