INSERT INTO docket_analytics_state (id, rolled_until) VALUES (1, ?1)
ON CONFLICT (id) DO UPDATE SET rolled_until = max(docket_analytics_state.rolled_until, excluded.rolled_until)
