UPDATE docket_alert_silences SET until = ?2 WHERE id = ?1 AND until > ?2
