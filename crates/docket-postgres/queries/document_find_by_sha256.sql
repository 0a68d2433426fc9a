SELECT *
FROM documents
WHERE sha256 = $1
ORDER BY created_at DESC, id DESC
LIMIT 1
