-- Take the leadership if it is free or lapsed; renew it if already held. Returns a row only
-- when $1 leads afterwards.
INSERT INTO docket_leader (name, leader_id, elected_at, expires_at)
VALUES ('default', $1, coalesce($3::timestamptz, now()),
        coalesce($3::timestamptz, now()) + $2::float8 * interval '1 second')
ON CONFLICT (name) DO UPDATE
SET leader_id = EXCLUDED.leader_id,
    elected_at = CASE WHEN docket_leader.leader_id = EXCLUDED.leader_id
                      THEN docket_leader.elected_at ELSE EXCLUDED.elected_at END,
    expires_at = EXCLUDED.expires_at
WHERE docket_leader.leader_id = EXCLUDED.leader_id
   OR docket_leader.expires_at <= EXCLUDED.elected_at
RETURNING leader_id
