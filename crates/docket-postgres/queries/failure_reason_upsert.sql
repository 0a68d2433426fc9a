-- Adds an hour's attempts of a reason to its row: counts summed, seen times widened, the
-- newest example and example jobs kept.
INSERT INTO docket_failure_reasons
    (job_type, reason, example, count, first_seen, last_seen, example_job_ids)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (job_type, reason) DO UPDATE
SET count = docket_failure_reasons.count + excluded.count,
    first_seen = least(docket_failure_reasons.first_seen, excluded.first_seen),
    last_seen = greatest(docket_failure_reasons.last_seen, excluded.last_seen),
    example = CASE WHEN excluded.last_seen >= docket_failure_reasons.last_seen
                   THEN excluded.example ELSE docket_failure_reasons.example END,
    example_job_ids = (
        SELECT coalesce(array_agg(id ORDER BY id DESC), '{}')
        FROM (SELECT DISTINCT id
              FROM unnest(excluded.example_job_ids || docket_failure_reasons.example_job_ids) AS id
              ORDER BY id DESC
              LIMIT 5) newest
    )
