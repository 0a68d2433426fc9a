INSERT INTO docket_audit (at, actor, action, target, job_ids, detail)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
RETURNING *
