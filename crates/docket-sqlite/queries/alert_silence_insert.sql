INSERT INTO docket_alert_silences (rule, subject, created_at, until, actor, reason)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
RETURNING *
