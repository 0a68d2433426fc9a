-- Searchable documents by file name (contains ?1, case-insensitive for ASCII), with their
-- metadata, which the driver matches against the filter (docket_core::json_contains), by id.
SELECT id, metadata
FROM documents
WHERE active_generation IS NOT NULL
  AND (?1 IS NULL OR instr(lower(filename), lower(?1)) > 0)
ORDER BY id
