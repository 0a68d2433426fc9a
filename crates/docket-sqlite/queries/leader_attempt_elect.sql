-- Take the leadership if it is free or lapsed; renew it if already held. Returns a row only
-- when ?1 leads afterwards. ?2 is the term, in microseconds.
INSERT INTO docket_leader (name, leader_id, elected_at, expires_at)
VALUES ('default', ?1, ?3, ?3 + ?2)
ON CONFLICT (name) DO UPDATE
SET leader_id = excluded.leader_id,
    elected_at = CASE WHEN docket_leader.leader_id = excluded.leader_id
                      THEN docket_leader.elected_at ELSE excluded.elected_at END,
    expires_at = excluded.expires_at
WHERE docket_leader.leader_id = excluded.leader_id
   OR docket_leader.expires_at <= excluded.elected_at
RETURNING leader_id
