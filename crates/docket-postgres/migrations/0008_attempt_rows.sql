-- docket queue schema, version 8 (PostgreSQL): an attempt row costs one index entry and no
-- per-row check.
--
-- Every finished attempt inserts a row here, in the statement that ends it; at queue speed
-- that insert cost more than the job row's own update. Its foreign key ran a lookup (and a
-- row lock) on processing_jobs for every row, and it kept two indexes: the surrogate primary
-- key and (job_id, attempt). Every row comes from the RETURNING of an update of its job in
-- the same statement, so the check could never fail; deleting jobs still deletes their
-- attempts, once per statement, through the triggers below (the cleaner, document deletion
-- and the original cleanup_old_jobs() alike). The one index left, (job_id, id), is what
-- every reader asks for: a job's attempts in order.

ALTER TABLE job_attempts DROP CONSTRAINT job_attempts_job_id_fkey;
ALTER TABLE job_attempts DROP CONSTRAINT job_attempts_pkey;
ALTER TABLE job_attempts ADD PRIMARY KEY (job_id, id);
DROP INDEX job_attempts_job_idx;

CREATE FUNCTION docket_job_attempts_cascade() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE job_attempts;
    ELSE
        DELETE FROM job_attempts a USING gone g WHERE a.job_id = g.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER processing_jobs_delete_attempts
    AFTER DELETE ON processing_jobs
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION docket_job_attempts_cascade();

CREATE TRIGGER processing_jobs_truncate_attempts
    AFTER TRUNCATE ON processing_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION docket_job_attempts_cascade();
