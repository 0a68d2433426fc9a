INSERT INTO processing_jobs
    (job_type, queue, priority, payload, max_attempts, run_at, unique_key, document_id, status)
SELECT t.job_type, t.queue, t.priority, t.payload, t.max_attempts,
       coalesce(t.run_at, now()), t.unique_key, t.document_id, 'queued'
FROM unnest($1::text[], $2::text[], $3::int2[], $4::jsonb[], $5::int4[],
            $6::timestamptz[], $7::text[], $8::uuid[])
     AS t(job_type, queue, priority, payload, max_attempts, run_at, unique_key, document_id)
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('queued', 'running', 'retrying')
    DO NOTHING
RETURNING id, unique_key
