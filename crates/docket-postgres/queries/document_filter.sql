-- Searchable documents by file name (contains $1, case-insensitive) and metadata (contains
-- $2), by id. NULL: no condition.
SELECT id
FROM documents
WHERE active_generation IS NOT NULL
  AND ($1::text IS NULL OR strpos(lower(filename), lower($1::text)) > 0)
  AND ($2::jsonb IS NULL OR metadata @> $2::jsonb)
ORDER BY id
