DELETE FROM docket_failure_reasons WHERE last_seen < ?1
