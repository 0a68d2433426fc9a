INSERT INTO docket_audit (at, actor, action, target, job_ids, detail)
VALUES (coalesce($1::timestamptz, now()), $2, $3, $4, $5, $6)
RETURNING *
