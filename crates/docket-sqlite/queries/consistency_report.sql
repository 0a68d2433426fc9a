-- The invariants of documents, chunks, jobs and attempts, counted: one row.
SELECT
    (SELECT count(*) FROM documents WHERE status = 'completed') AS documents_completed,
    (SELECT count(*) FROM documents WHERE status = 'failed') AS documents_failed,
    (SELECT count(*) FROM document_chunks) AS chunks,
    -- No chunk stored twice (the unique index forbids it; counted anyway).
    (SELECT count(*) FROM (SELECT 1 FROM document_chunks
        GROUP BY document_id, generation, chunk_index HAVING count(*) > 1) d) AS duplicate_chunks,
    -- Every completed document holds exactly the chunks it says it has ...
    (SELECT count(*) FROM documents d WHERE d.status = 'completed' AND d.chunk_count <>
        (SELECT count(*) FROM document_chunks c
         WHERE c.document_id = d.id AND c.generation = d.active_generation)) AS chunk_count_mismatches,
    -- ... each with its vector.
    (SELECT count(*) FROM document_chunks c JOIN documents d ON d.id = c.document_id
        WHERE c.generation = d.active_generation AND c.embedding IS NULL) AS chunks_without_vector,
    -- No job finished twice: one completed attempt at most per job, and one completed job per
    -- (document, generation, stage).
    (SELECT count(*) FROM (SELECT job_id FROM job_attempts WHERE outcome = 'completed'
        GROUP BY job_id HAVING count(*) > 1) j) AS jobs_completed_twice,
    (SELECT count(*) FROM (SELECT unique_key FROM processing_jobs
        WHERE status = 'completed' AND unique_key LIKE 'document:%'
        GROUP BY unique_key HAVING count(*) > 1) j) AS stages_completed_twice,
    -- Every attempt recorded: each claim (the job's attempt counter) left exactly one row
    -- (attempts given back uncounted, `released`, aside).
    (SELECT count(*) FROM processing_jobs j WHERE j.attempts <>
        (SELECT count(*) FROM job_attempts a WHERE a.job_id = j.id AND a.outcome <> 'released'))
        AS attempts_unrecorded,
    (SELECT count(*) FROM processing_jobs j WHERE j.status = 'completed' AND NOT EXISTS
        (SELECT 1 FROM job_attempts a WHERE a.job_id = j.id AND a.outcome = 'completed'))
        AS completed_jobs_without_attempt,
    (SELECT count(*) FROM processing_jobs WHERE job_type LIKE 'docket.%'
        AND job_type NOT IN ('docket.cleanup', 'docket.sweep_documents', 'docket.analytics',
                             'docket.sweep_originals')
        AND status <> 'completed') AS jobs_not_completed
