-- Of the claims given (job id, token), those the job no longer runs under: it was cancelled,
-- rescued, retried, discarded or deleted meanwhile.
SELECT c.id
FROM unnest($1::int8[], $2::uuid[]) AS c(id, claim_token)
LEFT JOIN processing_jobs j ON j.id = c.id
WHERE j.id IS NULL OR j.status <> 'running' OR j.claim_token IS DISTINCT FROM c.claim_token
ORDER BY c.id
