DELETE FROM docket_attempt_rollup WHERE hour < ?1
