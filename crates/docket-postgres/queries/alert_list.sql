SELECT *
FROM docket_alerts
WHERE ($1::boolean IS NULL OR (state <> 'resolved') = $1)
  AND ($2::text IS NULL OR rule = $2)
  AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4
