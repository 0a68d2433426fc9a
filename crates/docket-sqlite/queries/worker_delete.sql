DELETE FROM docket_workers WHERE id = ?1
