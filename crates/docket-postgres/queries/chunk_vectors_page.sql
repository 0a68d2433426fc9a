-- Embedded chunks by id after $2, at most $3 of them, each with whether it belongs to its
-- document's active generation (and, $4 not NULL, to that embedder's vectors); the
-- embedding only where it does. $1 NULL: every document. (Restricted to chunk ids:
-- chunk_vectors_by_id.) The driver reads on while too few are live.
-- The page is taken from the primary key first, in a materialised step of its own, and only
-- then checked against `documents`: as one join (or with the check as a subquery), the
-- planner's guess of how many chunks pass decided the plan, and where it guessed few (a bulk
-- load not yet analysed; any table of some 100,000 chunks) it read and sorted every chunk for
-- each page: 3.4 s a page at a million chunks, 9 ms this way.
WITH page AS MATERIALIZED (
    SELECT c.id, c.document_id, c.generation, c.embedding
    FROM document_chunks c
    WHERE c.embedding IS NOT NULL
      AND c.id > $2
      AND ($1::uuid[] IS NULL OR c.document_id = ANY($1::uuid[]))
    ORDER BY c.id
    LIMIT $3
)
SELECT p.id, p.document_id, d.id IS NOT NULL AS live,
       CASE WHEN d.id IS NOT NULL THEN p.embedding END AS embedding
FROM page p
LEFT JOIN documents d
       ON d.id = p.document_id
      AND d.active_generation = p.generation
      AND ($4::text IS NULL OR d.embedder_fingerprint = $4::text)
ORDER BY p.id
