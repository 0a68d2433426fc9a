SELECT *
FROM docket_audit
WHERE (?1 IS NULL OR action = ?1)
  AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(job_ids) WHERE value = ?2))
  AND (?3 IS NULL OR id < ?3)
ORDER BY id DESC
LIMIT ?4
