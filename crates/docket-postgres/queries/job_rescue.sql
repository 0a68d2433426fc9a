-- Applies the rescues the engine decided: each job goes back to the queue (due at its backoff,
-- with the max_attempts the engine gave it, one more rescue in a row) or to the dead-letter
-- state, only while it still runs under the dead claim. Each rescued attempt is recorded.
WITH input AS (
    SELECT *
    FROM unnest($1::int8[], $2::uuid[], $3::int4[], $4::text[], $5::timestamptz[],
                $6::text[], $7::timestamptz[], $8::text[], $10::int4[])
         AS t(id, claim_token, attempt, worker_id, started_at, status, run_at, error,
              max_attempts)
), upd AS (
    UPDATE processing_jobs j
    SET status = i.status,
        run_at = CASE WHEN i.status = 'queued' THEN i.run_at ELSE j.run_at END,
        last_error = i.error,
        max_attempts = i.max_attempts,
        rescues = j.rescues + 1,
        completed_at = CASE WHEN i.status = 'failed' THEN coalesce($9::timestamptz, now()) END,
        locked_by = NULL,
        locked_at = NULL,
        claim_token = NULL,
        updated_at = coalesce($9::timestamptz, now())
    FROM input i
    WHERE j.id = i.id AND j.status = 'running'
      AND j.claim_token IS NOT DISTINCT FROM i.claim_token
    RETURNING i.*
), attempt AS (
    INSERT INTO job_attempts
        (job_id, attempt, worker_id, started_at, finished_at, outcome, error, duration_ms)
    SELECT id, attempt, worker_id, started_at, coalesce($9::timestamptz, now()), 'rescued', error,
           greatest(0, (extract(epoch FROM coalesce($9::timestamptz, now()) - started_at) * 1000)::bigint)
    FROM upd
)
SELECT id, status FROM upd
