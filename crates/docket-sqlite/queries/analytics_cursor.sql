SELECT rolled_until FROM docket_analytics_state WHERE id = 1
