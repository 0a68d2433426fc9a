WITH r AS (DELETE FROM docket_attempt_rollup WHERE hour < $1 RETURNING 1),
     f AS (DELETE FROM docket_failure_reasons WHERE last_seen < $1 RETURNING 1)
SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM f) AS n
