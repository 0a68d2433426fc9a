SELECT * FROM processing_jobs WHERE id = ?1
