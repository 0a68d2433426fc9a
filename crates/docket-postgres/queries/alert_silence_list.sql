SELECT * FROM docket_alert_silences
WHERE until > coalesce($1::timestamptz, now())
ORDER BY id DESC
