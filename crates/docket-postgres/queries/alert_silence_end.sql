UPDATE docket_alert_silences
SET until = coalesce($2::timestamptz, now())
WHERE id = $1 AND until > coalesce($2::timestamptz, now())
