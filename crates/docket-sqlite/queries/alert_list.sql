SELECT *
FROM docket_alerts
WHERE (?1 IS NULL OR (state <> 'resolved') = ?1)
  AND (?2 IS NULL OR rule = ?2)
  AND (?3 IS NULL OR id < ?3)
ORDER BY id DESC
LIMIT ?4
