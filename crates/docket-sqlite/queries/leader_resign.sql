DELETE FROM docket_leader WHERE name = 'default' AND leader_id = ?1
