SELECT * FROM docket_alerts WHERE rule = ?1 AND subject = ?2 AND state <> 'resolved'
