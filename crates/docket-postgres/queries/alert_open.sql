-- Opens an alert unless one of the rule and subject is open; the caller reads the open one then.
INSERT INTO docket_alerts (rule, subject, state, severity, summary, figures, pending_at,
                           firing_at, evaluated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $3 = 'firing' THEN $7 END, $7)
ON CONFLICT (rule, subject) WHERE state <> 'resolved' DO NOTHING
RETURNING *
