-- Moves (or refreshes) an open alert, only while it is still in the state the caller read.
UPDATE docket_alerts
SET state        = $3,
    summary      = $4,
    figures      = $5,
    evaluated_at = $7,
    firing_at    = CASE WHEN $3 = 'firing' AND firing_at IS NULL THEN $7 ELSE firing_at END,
    resolved_at  = CASE WHEN $3 = 'resolved' THEN $7 END,
    notified_at  = CASE WHEN $6 THEN $7 ELSE notified_at END
WHERE id = $1
  AND state = $2
  AND state <> 'resolved'
RETURNING *
