-- Newest first: ids are UUID v7, which sort by creation time.
SELECT *
FROM documents
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR source = $2)
  AND ($3::uuid IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4
