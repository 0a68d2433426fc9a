SELECT leader_id, elected_at, expires_at
FROM docket_leader
WHERE name = 'default' AND expires_at > ?1
