-- Searchable documents by the embedder of their active vectors, and whether they finished.
SELECT embedder, embedder_fingerprint,
       status IN ('completed', 'failed', 'cancelled') AS finished,
       count(*) AS documents
FROM documents
WHERE active_generation IS NOT NULL
GROUP BY 1, 2, 3
ORDER BY 4 DESC, 2
