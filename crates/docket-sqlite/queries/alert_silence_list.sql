SELECT * FROM docket_alert_silences WHERE until > ?1 ORDER BY id DESC
