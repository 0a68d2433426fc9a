INSERT INTO docket_attempt_rollup
    (hour, job_type, queue, outcome, attempts, total_ms, p50_ms, p95_ms, p99_ms, max_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (hour, job_type, queue, outcome) DO UPDATE
SET attempts = excluded.attempts, total_ms = excluded.total_ms, p50_ms = excluded.p50_ms,
    p95_ms = excluded.p95_ms, p99_ms = excluded.p99_ms, max_ms = excluded.max_ms
