-- Of the claims given (?1: a JSON array of [id, claim_token]), those the job no longer runs
-- under: it was cancelled, rescued, retried, discarded or deleted meanwhile.
WITH c AS (
    SELECT value ->> 0 AS id, value ->> 1 AS claim_token FROM json_each(?1)
)
SELECT c.id
FROM c
LEFT JOIN processing_jobs j ON j.id = c.id
WHERE j.id IS NULL OR j.status <> 'running' OR j.claim_token IS NOT c.claim_token
ORDER BY c.id
