-- Newest first: ids are UUID v7, which sort by creation time (as text, too).
SELECT *
FROM documents
WHERE (?1 IS NULL OR status = ?1)
  AND (?2 IS NULL OR source = ?2)
  AND (?3 IS NULL OR id < ?3)
ORDER BY id DESC
LIMIT ?4
